"""The Textual application: wires the collection loop to tab views, and keys
to actions."""

from __future__ import annotations

import asyncio
import functools
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Type

from rich.console import Console

from textual.app import App
from textual.binding import Binding
from textual.widgets import Input, TabbedContent

from . import snapshots
from .bpf.stats import StatsSwitch
from .collectors.base import Collector
from .errors import BpftopError
from .console_filters import FilterState
from .filters import NO_FILTER, Filter, FilterError
from .keys import KEYS
from .model import CollectorState, CollectorStatus
from .model.history import History
from .messages import RecordingFailed, SnapshotReady, StatusChanged
from .probes import ProbeMeter, ProbeRow
from .recording.file import Recorder, RecordingError
from .recording.file import header as recording_header
from .recording.replay import Replay
from .loop import CollectionLoop, Snapshots
from .safetext import safe_lines
from .screens.goto import GotoScreen
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.probes import ProbesScreen
from .tabs import TABS, TabSpec
from .views.base import TabView
from .views.cache import CacheView
from .views.disk import DiskView
from .views.syscalls import SyscallsView
from .views.tcp import TcpView
from .widgets.filter_bar import FilterBar
from .widgets.top_table import TopTable

VIEWS: Dict[str, Type[TabView]] = {"syscalls": SyscallsView, "disk": DiskView, "tcp": TcpView, "cache": CacheView}

_PRIORITY = {"quit", "next_tab", "previous_tab"}
REPLAY_ACTIONS = {"replay_step", "replay_speed", "replay_goto"}

INTERVALS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class RecordingMark:
    """The recording the title line shows, and why it stopped if it did."""

    path: str
    failed: str = ""  # short, for the title line
    message: str = ""  # the whole story, for stderr at exit


def step_interval(current: float, step: int) -> float:
    if step > 0:
        larger = [i for i in INTERVALS if i > current + 1e-9]
        return larger[0] if larger else current
    smaller = [i for i in INTERVALS if i < current - 1e-9]
    return smaller[-1] if smaller else current


class BpftopApp(App):
    TITLE = "bpftop"
    # The screens' style sheets, loaded once by the app: a default screen's
    # own CSS_PATH is not read by Textual.
    # Absolute: Textual resolves relative paths against the module of the
    # class actually run, which may be a subclass elsewhere.
    CSS_PATH = [Path(__file__).parent / "screens" / f"{name}.tcss" for name in ("main", "help", "probes")]
    ENABLE_COMMAND_PALETTE = False
    # The footer shows each action's letter key; F-key aliases bind hidden.
    # Priority for keys the screen or a table would otherwise take first.
    BINDINGS = [
        Binding(key, k.action, k.footer or k.description, show=bool(k.footer) and i == 0,
                priority=k.action in _PRIORITY)
        for k in KEYS
        for i, key in enumerate(k.keys.split(","))
    ]

    def __init__(
        self,
        collectors: Sequence[Collector],
        interval: float = 1.0,
        initial_tab: Optional[str] = None,
        pinned: Filter = NO_FILTER,
        enabled: Optional[Iterable[str]] = None,
        snapshot_dir: Optional[Path] = None,
        recorder: Optional[Recorder] = None,
        replay: Optional[Replay] = None,
    ) -> None:
        super().__init__()
        self.collectors = list(collectors)
        self.by_tab = {c.tab: c for c in self.collectors}
        self.interval = interval
        self.enabled: Set[str] = set(self.by_tab if enabled is None else enabled)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else snapshots.default_dir()
        self.meter = ProbeMeter()
        self.bpf_stats = StatsSwitch()
        self.recorder = recorder
        # Shown in the title line for as long as bpftop runs.
        self.recording_state = RecordingMark(recorder.path) if recorder is not None else None
        self.replay = replay
        self._replay_clock = 0.0
        self.specs: List[TabSpec] = [TABS[c.tab] for c in self.collectors]
        self.initial_tab = initial_tab or self.specs[0].id
        # The pinned filter holds on every tab, together with the tab's own;
        # -p on the command line arrives here, already applied in the kernel.
        self.filter_state = FilterState(
            self.by_tab, {s.id: s.title for s in self.specs}, self._view_fields, pinned
        )
        self.collection: Optional[CollectionLoop] = None  # None in a replay: nothing is collected
        self._ui_loop: Optional[asyncio.AbstractEventLoop] = None
        self.paused = False
        self._held: Dict[str, object] = {}  # snapshots that arrived while paused
        self.history = History()  # every graph's series; the views render from it
        # Latest status per tab; a view mounted after it arrived reads it here.
        self.statuses: Dict[str, CollectorStatus] = {}

    def notify(self, message: str, *, markup: bool = False, **kwargs) -> None:
        # Messages quote filters, paths and errors: never markup, never raw.
        super().notify(safe_lines(message), markup=markup, **kwargs)

    # -- lifecycle ----------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        self.main_screen = MainScreen(self.specs, VIEWS, self.initial_tab)
        return self.main_screen

    def on_mount(self) -> None:
        self._ui_loop = asyncio.get_running_loop()
        if self.replay is not None:
            self._start_replay()
            return
        self.collection = CollectionLoop(
            self.collectors, self.interval, on_interval=self._collected,
            on_status=lambda status: self.post_message(StatusChanged(status)), enabled=self.enabled,
        )
        self.collection.start()
        # The views are composed by the next refresh. Focus goes into the
        # first tab so that its own keys (bindings of its view) work at once.
        self.call_after_refresh(lambda: [self._show_filter(spec.id) for spec in self.specs])
        self.call_after_refresh(self._initial_focus)

    def _collected(self, snapshots: Snapshots) -> None:
        """In the collection loop's thread: record, then hand to the UI."""
        if self.recorder is not None:
            try:
                self.recorder.write_many(snapshots)
            except RecordingError as e:
                self.recorder = None  # one notice, then the console goes on
                if self.recording_state is not None:
                    self.recording_state.failed = getattr(e, "reason", "") or str(e)
                    self.recording_state.message = str(e)
                self.post_message(RecordingFailed(str(e)))
        for tab, snapshot in snapshots:
            self.post_message(SnapshotReady(tab, snapshot))

    def on_recording_failed(self, message: RecordingFailed) -> None:
        self.notify(f"recording stopped: {message.why}; what was written before stays replayable",
                    severity="error", timeout=10)
        self._refresh_title()

    def recording_header(self) -> Dict[str, object]:
        hooks = {t: s.chosen.strategy for t, s in self.statuses.items() if s.chosen is not None}
        filters = {t: self.effective_filter(t).text for t in self.by_tab if self.effective_filter(t)}
        if self.pinned:
            filters["pinned"] = self.pinned.text
        return recording_header(list(self.by_tab), self.interval, hooks, filters)

    # -- replay ---------------------------------------------------------------
    def _start_replay(self) -> None:
        for collector in self.collectors:
            self.statuses[collector.tab] = collector.status
        self.call_after_refresh(self._show_replay_position)
        self.call_after_refresh(lambda: [self._show_filter(spec.id) for spec in self.specs])
        self.call_after_refresh(self._initial_focus)
        self._replay_clock = time.monotonic()
        self.set_interval(0.1, self._replay_tick)

    def _replay_tick(self) -> None:
        now = time.monotonic()
        elapsed, self._replay_clock = now - self._replay_clock, now
        if self.replay is not None and self.replay.advance(elapsed):
            self._show_replay_position()

    def _show_replay_position(self) -> None:
        if self.replay is None:
            return
        self.replay.bring_history(self.history)
        for tab, snapshot in self.replay.snapshots().items():
            view = self.view(tab)
            if view is not None:
                view.show_snapshot(snapshot)
        self._refresh_title()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action in REPLAY_ACTIONS and self.replay is None:
            return False  # the replay keys do nothing live
        if action == "interval" and self.replay is not None:
            return False  # a recording's intervals are fixed
        return True

    def action_replay_step(self, n: int) -> None:
        if self.replay is not None:
            self.paused = True  # stepping is for looking closely
            self.replay.playing = False
            if not self.replay.step(n):
                self.notify("at the " + ("end" if n > 0 else "start") + " of the recording", timeout=2)
            self._show_replay_position()

    def action_replay_speed(self) -> None:
        if self.replay is not None:
            speed = self.replay.next_speed()
            self.notify(f"replay at {speed:g}x", timeout=2)
            self._refresh_title()

    def action_replay_goto(self) -> None:
        if self.replay is None:
            return

        def go(text: Optional[str]) -> None:
            if not text or self.replay is None:
                return
            try:
                self.replay.seek(self.replay.parse_time(text))
            except BpftopError as e:
                self.notify(str(e), severity="error", timeout=6)
                return
            self._show_replay_position()

        self.push_screen(GotoScreen(self.replay.describe()), go)

    def _initial_focus(self) -> None:
        """Into the first tab, unless the operator has already moved on."""
        if isinstance(self.screen, MainScreen) and not self.main_screen.query_one(FilterBar).is_open:
            tabs = self._tabs()
            self.activate(tabs.active if tabs is not None and tabs.active else self.initial_tab)

    def request_exit(self, code: int) -> bool:
        """From any thread, without waiting on the UI: ask it to exit with
        ``code``. False when there is no running UI loop to ask."""
        loop = self._ui_loop
        if loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(functools.partial(self.exit, return_code=code))
        return True

    def output_healthy(self) -> bool:
        """False once Textual's output thread has died (a write error on
        the terminal): the console can no longer be seen or driven."""
        writer = getattr(getattr(self, "_driver", None), "_writer_thread", None)
        return writer is None or writer.is_alive() or not self.is_running

    def stop_collectors(self) -> None:
        if self.collection is not None:
            self.collection.stop()
        self.bpf_stats.close()

    async def on_unmount(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_collectors)

    # -- collector messages -----------------------------------------------------
    def view(self, tab: str) -> Optional[TabView]:
        try:
            # Views live on the main screen even while help or probes cover it.
            return self.main_screen.query_one(f"#view-{tab}", TabView)
        except Exception:
            return None

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.history.feed(message.tab, message.snapshot)
        if self.paused:
            self._held[message.tab] = message.snapshot
            return
        view = self.view(message.tab)
        if view is not None:
            view.show_snapshot(message.snapshot)
            if self.screen is self.main_screen and not isinstance(self.focused, (TopTable, Input)):
                # A tab's own keys are bindings of its view: keep the focus
                # in the tab shown (start-up can leave it on the tab bar).
                tabs = self._tabs()
                if tabs is not None and tabs.active == message.tab:
                    self.activate(message.tab)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.statuses[message.status.tab] = message.status
        view = self.view(message.status.tab)
        if view is not None:
            view.set_status(message.status)

    # -- actions ------------------------------------------------------------
    def _tabs(self) -> Optional[TabbedContent]:
        try:
            return self.main_screen.query_one(TabbedContent)
        except Exception:
            return None

    def current_view(self) -> Optional[TabView]:
        tabs = self._tabs()
        return self.view(tabs.active) if tabs and tabs.active else None

    def _refresh_title(self) -> None:
        self.main_screen.refresh_title()

    def action_quit(self) -> None:
        self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([VIEWS[spec.id] for spec in self.specs]))

    # -- filters ------------------------------------------------------------
    def _spec(self, tab: str) -> TabSpec:
        return next(s for s in self.specs if s.id == tab)

    @property
    def pinned(self) -> Filter:
        return self.filter_state.pinned

    @property
    def filters(self) -> Dict[str, Filter]:
        """Each tab's own filter (the pinned one holds besides)."""
        return self.filter_state.own

    def effective_filter(self, tab: str) -> Filter:
        return self.filter_state.effective(tab)

    def _view_fields(self, tab: str) -> List[str]:
        view = self.view(tab)
        return view.filter_fields() if view is not None else []

    def _show_filter(self, tab: str) -> None:
        view = self.view(tab)
        if view is None:
            return
        state = self.filter_state
        view.apply_filter(state.effective(tab), pinned=state.pinned, ignored=state.ignored(tab))

    def action_filter(self) -> None:
        tabs = self._tabs()
        if tabs is None or not isinstance(self.screen, MainScreen):
            return
        bar = self.screen.query_one(FilterBar)
        bar.open(self.filters.get(tabs.active, Filter()).text, self._spec(tabs.active).title)

    def on_filter_bar_edited(self, message: FilterBar.Edited) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        bar = self.screen.query_one(FilterBar)
        tab = tabs.active
        try:
            if not message.final and self.filter_state.needs_collector(tab, message.text):
                # Kernel-side terms change on Enter only: typing pid=1234
                # should not re-filter the kernel at 1, 12 and 123 first.
                bar.show_error("")
                bar.show_hint("Enter applies it (its pid/port/disk terms go to the kernel)")
                return
            self.filter_state.set(tab, message.text)
        except FilterError as e:
            bar.show_error(f"not applied: {e}")
            return
        bar.show_error("")
        self._show_filter(tab)
        if message.final:
            bar.action_close()

    def on_filter_bar_closed(self, _message: FilterBar.Closed) -> None:
        view = self.current_view()
        table = view.active_table() if view else None
        if table is not None:
            table.focus()

    def action_pin_filter(self) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        try:
            note = self.filter_state.toggle_pin(tabs.active, [spec.id for spec in self.specs])
        except FilterError as e:
            self.notify(f"filter not pinned: {e}", severity="error", timeout=5)
            return
        if note is None:
            self.notify("no filter on this tab to pin (/ sets one)", severity="warning", timeout=3)
            return
        for spec in self.specs:
            self._show_filter(spec.id)
        self.notify(note, timeout=3)

    # -- probes -------------------------------------------------------------
    def action_probes(self) -> None:
        if isinstance(self.screen, ProbesScreen):
            self.pop_screen()
            return
        if not self.bpf_stats.open():
            self.notify(f"no kernel cost figures: {self.bpf_stats.error}", severity="warning", timeout=5)
        self.push_screen(ProbesScreen())

    def stats_note(self) -> str:
        if self.bpf_stats.how:
            return f"kernel cost from BPF run-time statistics: {self.bpf_stats.how}"
        return f"no kernel cost figures: {self.bpf_stats.error}"

    def sample_probes(self) -> List[ProbeRow]:
        return self.meter.sample(self.collectors, self.statuses)

    def toggle_probe(self, tab: str) -> None:
        if self.collection is None or tab not in self.collection.tabs:
            if self.replay is not None:
                self.notify("a replay has no probes to switch: it shows what was recorded", timeout=4)
            return
        on = not self.collection.is_enabled(tab)
        self.collection.set_enabled(tab, on)
        if on:
            self.enabled.add(tab)
            self.statuses[tab] = CollectorStatus(tab, CollectorState.STARTING, message="compiling and attaching")
        else:
            self.enabled.discard(tab)
            self.statuses[tab] = CollectorStatus(tab, CollectorState.DISABLED, message="switched off by the operator")
        view = self.view(tab)
        if view is not None:
            view.set_status(self.statuses[tab])
        self.notify(f"{self._spec(tab).title}: {'switching on' if on else 'switched off, programs detached'}",
                    timeout=3)

    # -- snapshots ------------------------------------------------------------
    def screen_text(self) -> str:
        """The current screen as plain text: no colour codes, box drawing kept."""
        width, height = self.size
        console = Console(width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
                          color_system=None, legacy_windows=False, safe_box=False)
        console.print(self.screen._compositor.render_update(full=True))
        return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines()) + "\n"

    def _snapshot_header(self, tabs: Sequence[str]) -> str:
        filters = "; ".join(f"{t}: {self.effective_filter(t).text}" for t in tabs if self.effective_filter(t))
        hooks = ", ".join(
            f"{t}: {self.statuses[t].chosen.strategy}" for t in tabs
            if t in self.statuses and self.statuses[t].chosen is not None
            and self.statuses[t].state is not CollectorState.DISABLED
        )
        return snapshots.header(tabs, self.interval, filters, hooks)

    def _save(self, stem: str, tabs: Sequence[str], body: str) -> None:
        try:
            path = snapshots.save(self.snapshot_dir, stem, self._snapshot_header(tabs) + "\n" + body)
        except OSError as e:  # SnapshotError says where and why; anything else too
            self.notify(f"snapshot not saved: {e}", severity="error", timeout=6)
            return
        self.notify(f"saved {path}", timeout=5)

    def action_snapshot(self) -> None:
        tabs = self._tabs()
        tab = tabs.active if tabs is not None and isinstance(self.screen, MainScreen) else "screen"
        self._save(f"bpftop-{tab}", [tab], self.screen_text())

    def action_snapshot_all(self) -> None:
        # A worker, not the handler: capturing each tab waits for refreshes,
        # which the message loop must be free to run.
        self.run_worker(self._snapshot_all(), group="snapshot", exclusive=True)

    async def _snapshot_all(self) -> None:
        tabs = self._tabs()
        if tabs is None or not isinstance(self.screen, MainScreen):
            return
        start = tabs.active
        pages = []
        for spec in self.specs:
            self.activate(spec.id)
            await self._settle()
            pages.append(self.screen_text())
        self.activate(start)
        self._save("bpftop-all", [s.id for s in self.specs], "\n".join(pages))

    async def _settle(self) -> None:
        """Let a tab switch reach the screen before it is captured."""
        for _ in range(3):
            event = asyncio.Event()
            self.call_after_refresh(event.set)
            await event.wait()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.replay is not None:
            self.replay.playing = not self.paused
            self._replay_clock = time.monotonic()
        elif not self.paused:
            held, self._held = self._held, {}
            for tab, snapshot in held.items():
                view = self.view(tab)
                if view is not None:
                    view.show_snapshot(snapshot)
        self._refresh_title()

    def activate(self, tab: str) -> None:
        """Show a tab and move the focus into it: focus left on a table of
        the hidden tab would make TabbedContent switch straight back."""
        tabs = self._tabs()
        if tabs is None:
            return
        tabs.active = tab
        view = self.view(tab)
        table = view.active_table() if view is not None else None
        # Now, not with Widget.focus() (which defers): a deferred focus from
        # a key pressed just before would land in the tab left since.
        if isinstance(self.screen, MainScreen):
            self.main_screen.set_focus(table)

    def action_show_tab(self, index: int) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        if index < len(self.specs):
            self.activate(self.specs[index].id)
        else:
            self.notify(f"there is no tab {index + 1}", severity="warning", timeout=2)

    def _step_tab(self, step: int) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        ids = [s.id for s in self.specs]
        self.activate(ids[(ids.index(tabs.active) + step) % len(ids)])

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def action_sort(self, step: int) -> None:
        view = self.current_view()
        table = view.active_table() if view else None
        if table is not None:
            table.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        view = self.current_view()
        table = view.active_table() if view else None
        if table is not None:
            table.toggle_reverse()

    def action_switch_table(self) -> None:
        view = self.current_view()
        if view is None:
            return
        tables = view.tables()
        if not tables:
            return
        current = view.active_table()
        index = tables.index(current) if current in tables else -1
        tables[(index + 1) % len(tables)].focus()

    def action_interval(self, step: int) -> None:
        new = step_interval(self.interval, step)
        if new == self.interval:
            self.notify(f"interval stays at {self.interval:g}s (limit)", timeout=2)
            return
        self.interval = new
        if self.collection is not None:
            self.collection.interval = new
        self._refresh_title()
