"""The Textual application: wiring. The collection loop feeds the tab views
of the main screen; keys reach the control that does
the work: FilterControl, CaptureControl, ReplayControl, the probes screen."""

from __future__ import annotations

import asyncio
import functools
import gc
from pathlib import Path
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Sequence, Set, Type

from rich.text import Text
from textual import constants, events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.widgets import Input, TabbedContent

from . import captures
from .collectors.base import Collector
from .console_filters import FilterState
from .filters import NO_FILTER, Filter
from .keys import KEYS
from .loop import CollectionLoop, Snapshots
from .messages import IntervalReady, RecordingFailed, StatusChanged, SwitchProbe
from .model import CollectorState, CollectorStatus
from .recording.file import Recorder, RecordingError
from .recording.file import header as recording_header
from .recording.replay import Replay
from .safetext import safe_lines
from .screens.capture_control import CaptureControl
from .screens.filter_control import FilterControl
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.probe_control import ProbeControl
from .screens.replay_control import ReplayControl
from .screens.textual_internals import output_healthy, screen_text
from .screens.title import RecordingMark, title_line
from .tabs import TABS, TabSpec, new_history
from .views.base import TabView
from .widgets.filter_bar import FilterBar
from .widgets.top_table import TopTable

_PRIORITY = {"quit", "next_tab", "previous_tab"}
REPLAY_ACTIONS = {"replay_step", "replay_speed", "replay_goto"}

INTERVALS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


def step_interval(current: float, step: int) -> float:
    if step > 0:
        larger = [i for i in INTERVALS if i > current + 1e-9]
        return larger[0] if larger else current
    smaller = [i for i in INTERVALS if i < current - 1e-9]
    return smaller[-1] if smaller else current


class BpftopApp(App[int]):
    TITLE = "bpftop"
    # The screens' style sheets, loaded once by the app: a default screen's
    # own CSS_PATH is not read by Textual.
    # Absolute: Textual resolves relative paths against the module of the
    # class actually run, which may be a subclass elsewhere.
    CSS_PATH = [Path(__file__).parent / "screens" / f"{name}.tcss" for name in ("main", "help", "probes")]
    ENABLE_COMMAND_PALETTE = False
    # The footer shows each action's letter key; F-key aliases bind hidden.
    # Priority for keys the screen or a table would otherwise take first.
    BINDINGS: ClassVar[List[BindingType]] = [
        Binding(key, k.action, k.footer or k.description, show=bool(k.footer) and i == 0,
                priority=k.action in _PRIORITY)
        for k in KEYS
        for i, key in enumerate(k.keys.split(","))
    ]

    def __init__(
        self,
        collectors: Sequence[Collector[Any]],
        interval: float = 1.0,
        initial_tab: Optional[str] = None,
        pinned: Filter = NO_FILTER,
        enabled: Optional[Iterable[str]] = None,
        capture_dir: Optional[Path] = None,
        recorder: Optional[Recorder] = None,
        replay: Optional[Replay] = None,
    ) -> None:
        super().__init__()
        # No animations: the tab underline's slide alone redrew the whole
        # screen about 18 times per tab key (most of a switch's CPU, and
        # bytes an SSH link has to carry for nothing).
        self.animation_level = "none"
        self.collectors = list(collectors)
        self.by_tab = {c.tab: c for c in self.collectors}
        self.interval = interval
        self.enabled: Set[str] = set(self.by_tab if enabled is None else enabled)
        # Latest status per tab; a view mounted after it arrived reads it here.
        self.statuses: Dict[str, CollectorStatus] = {}
        self.recorder = recorder
        # Shown in the title line for as long as bpftop runs.
        self.recording_state = RecordingMark(recorder.path) if recorder is not None else None
        self.replay = replay
        self.specs: List[TabSpec] = [TABS[c.tab] for c in self.collectors]
        self.initial_tab = initial_tab or self.specs[0].id
        self.main_screen = MainScreen(self.specs, self.initial_tab, self._title)
        # The pinned filter holds on every tab, together with the tab's own;
        # -p on the command line arrives here, already applied in the kernel.
        self.filter_state = FilterState(
            self.by_tab, {s.id: s.title for s in self.specs}, self._view_fields, pinned
        )
        self.filtering = FilterControl(self.filter_state, self.main_screen, self.specs, self.notify)
        self.capturing = CaptureControl(
            self.main_screen, self.specs, Path(capture_dir) if capture_dir else captures.default_dir(),
            self._capture_header, self.notify,
        )
        self.history = new_history()  # every graph's series; the views render from it
        self.probing = ProbeControl(self.collectors, self.statuses, self.enabled, self.main_screen, self.notify,
                                    replay=replay is not None)
        self.replaying = (ReplayControl(replay, self.main_screen, self.history, self.notify)
                          if replay is not None else None)
        self.collection: Optional[CollectionLoop] = None  # None in a replay: nothing is collected
        self._ui_loop: Optional[asyncio.AbstractEventLoop] = None
        # Until Textual's first layout (its Ready event), an exit waits here:
        # the return code asked for, or None when none was asked.
        self._laid_out = False
        self._exit_waiting: Optional[int] = None
        self.paused = False
        self._held: Dict[str, object] = {}  # snapshots that arrived while paused
        # Tabs that have shown data, until every running one has (then None).
        self._settling: Optional[Set[str]] = set()

    def get_driver_class(self) -> Type[Driver]:
        if constants.DRIVER is not None:  # TEXTUAL_DRIVER, as Textual honours it
            return super().get_driver_class()
        from .terminal_driver import ConsoleDriver
        return ConsoleDriver

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # A tab shown while the collectors still compile is started next.
        if self.collection is not None and event.pane.id:
            self.collection.prefer(event.pane.id)
            self._shown(event.pane.id)

    def _shown(self, tab: str) -> None:
        """Tabs not read while hidden (the BPF tab: its walk of every
        object in the kernel) are left unread only when nothing records: a
        recording keeps every tab at every interval."""
        if self.collection is not None and self.recorder is None:
            self.collection.show(tab)

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        # Messages quote filters, paths and errors: never markup, never raw.
        super().notify(safe_lines(message), markup=markup, **kwargs)

    def _title(self) -> Text:
        return title_line(self.interval, self.paused, self.recording_state, self.replay)

    # -- lifecycle ----------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        return self.main_screen

    def on_resize(self, event: events.Resize) -> None:
        self._pin_console_size(event.size.width, event.size.height)

    def _pin_console_size(self, width: int, height: int) -> None:
        # Rich asks the terminal for its size (ioctl TIOCGWINSZ) whenever its
        # size is read and none was given, and a DataTable reads it for each
        # cell it measures: hundreds of syscalls a second, thousands while
        # the window is large. The size only changes on a Resize.
        if width > 0 and height > 0:
            self.console.size = (width, height)

    def on_mount(self) -> None:
        self._pin_console_size(self.size.width, self.size.height)
        self._ui_loop = asyncio.get_running_loop()
        if self.replaying is not None:
            for collector in self.collectors:
                self.statuses[collector.tab] = collector.status
            self.call_after_refresh(self.replaying.show_position)
            self.replaying.start()
        else:
            self.collection = CollectionLoop(
                self.collectors, self.interval, on_interval=self._collected,
                on_status=self._status_changed, enabled=self.enabled,
            )
            self.probing.collection = self.collection
            self.collection.prefer(self.initial_tab)
            self._shown(self.initial_tab)
            # The compiles start once the first frame is drawn: the rungs'
            # checks and bcc's own Python hold the GIL, and with them going
            # the first frame came 0.5 s later.
            self.call_after_refresh(self.collection.start)
        # The views are composed by the next refresh. Focus goes into the
        # first tab so that its own keys (bindings of its view) work at once.
        self.call_after_refresh(self.filtering.show_all)
        self.call_after_refresh(self._initial_focus)

    def _initial_focus(self) -> None:
        """Into the first tab, unless the operator has already moved on."""
        if self.screen is self.main_screen and not self.main_screen.query_one(FilterBar).is_open:
            self.main_screen.activate(self.main_screen.active_tab or self.initial_tab)

    def request_exit(self, code: int) -> bool:
        """From any thread, without waiting on the UI: ask it to exit with
        ``code``. False when there is no running UI loop to ask."""
        loop = self._ui_loop
        if loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(functools.partial(self._exit_when_ready, code))
        return True

    def _exit_when_ready(self, code: int = 0) -> None:
        """Exit now, or once the screen's widgets are all mounted. An exit
        while they still mount (a q typed on the first paint, a SIGTERM at
        start) crashed Textual's tab bar: its own mount handler looked for
        tabs the exit had already removed, and printed a traceback."""
        if self._laid_out:
            self.exit(return_code=code)
        else:
            self._exit_waiting = code

    def on_ready(self) -> None:
        self._laid_out = True
        if self._exit_waiting is not None:
            self.call_after_refresh(self.exit, return_code=self._exit_waiting)

    def output_healthy(self) -> bool:
        return output_healthy(self)

    def stop_collectors(self) -> None:
        if self.collection is not None:
            self.collection.stop()
        self.probing.close()

    async def on_unmount(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_collectors)

    # -- collected data -------------------------------------------------------
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
        self.post_message(IntervalReady(snapshots))

    def _status_changed(self, status: CollectorStatus) -> None:
        """In the collection loop's threads."""
        self.post_message(StatusChanged(status))

    def on_recording_failed(self, message: RecordingFailed) -> None:
        self.notify(f"recording stopped: {message.why}; what was written before stays replayable",
                    severity="error", timeout=10)
        self.main_screen.refresh_title()

    def recording_header(self) -> Dict[str, object]:
        hooks = {t: s.chosen.strategy for t, s in self.statuses.items() if s.chosen is not None}
        filters = {t: self.effective_filter(t).text for t in self.by_tab if self.effective_filter(t)}
        if self.pinned:
            filters["pinned"] = self.pinned.text
        return recording_header(list(self.by_tab), self.interval, hooks, filters)

    def on_interval_ready(self, message: IntervalReady) -> None:
        for tab, snapshot in message.snapshots:
            self._show_snapshot(tab, snapshot)

    def _show_snapshot(self, tab: str, snapshot: Any) -> None:
        self.history.feed(tab, snapshot)
        self._settle(tab)
        if self.paused:
            self._held[tab] = snapshot
            return
        view = self.view(tab)
        if view is not None:
            view.show_snapshot(snapshot)
            if self.screen is self.main_screen and not isinstance(self.focused, (TopTable, Input)):
                # A tab's own keys are bindings of its view: keep the focus
                # in the tab shown (start-up can leave it on the tab bar).
                if self.main_screen.active_tab == tab:
                    self.main_screen.activate(tab)

    def _settle(self, tab: str) -> None:
        """Once every tab that runs has shown its first data, what the
        console built to get there (Textual's widgets, styles and caches,
        the first rows: about 80,000 objects) is collected once and then
        left out of Python's cyclic GC (``gc.freeze``); reference counting
        still frees any of it. Each full collection scanned all of it
        again: 50 ms of CPU, which landed in the middle of a tab switch now
        and then and, on a busy machine, held a key for hundreds of ms."""
        if self._settling is None:
            return
        self._settling.add(tab)
        waiting = {t for t in self.enabled if t not in self._settling}
        if any(self.statuses.get(t) is None or self.statuses[t].state in (CollectorState.STARTING,
                                                                           CollectorState.RUNNING)
               for t in waiting):
            return
        self._settling = None
        gc.collect()
        gc.freeze()

    def on_switch_probe(self, message: SwitchProbe) -> None:
        self.probing.toggle(message.tab, message.part)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.statuses[message.status.tab] = message.status
        view = self.view(message.status.tab)
        if view is not None:
            view.set_status(message.status)

    def view(self, tab: str) -> Optional[TabView]:
        return self.main_screen.view(tab)

    # -- filters ------------------------------------------------------------
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
        return view.filter_fields() if view is not None else list(TABS[tab].filter_fields)

    def on_filter_bar_edited(self, message: FilterBar.Edited) -> None:
        self.filtering.edited(message)

    def on_filter_bar_closed(self, _message: FilterBar.Closed) -> None:
        self.filtering.closed()

    def action_filter(self) -> None:
        self.filtering.open()

    def action_pin_filter(self) -> None:
        self.filtering.toggle_pin()

    # -- probes -------------------------------------------------------------
    def action_probes(self) -> None:
        self.probing.toggle_screen()

    # -- screen captures ------------------------------------------------------
    def screen_text(self) -> str:
        return screen_text(self)

    def _capture_header(self, tabs: Sequence[str]) -> str:
        filters = "; ".join(f"{t}: {self.effective_filter(t).text}" for t in tabs if self.effective_filter(t))
        hooks = ", ".join(
            f"{t}: {status.chosen.strategy}" for t in tabs
            if (status := self.statuses.get(t)) is not None and status.chosen is not None
            and status.state is not CollectorState.DISABLED
        )
        return captures.header(tabs, self.interval, filters, hooks)

    def action_save_screen(self) -> None:
        self.capturing.save_screen()

    def action_save_every_tab(self) -> None:
        # A worker, not the handler: capturing each tab waits for refreshes,
        # which the message loop must be free to run.
        self.run_worker(self.capturing.save_every_tab(), group="capture", exclusive=True)

    # -- the other keys -----------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        if action in REPLAY_ACTIONS and self.replay is None:
            return False  # the replay keys do nothing live
        if action == "interval" and self.replay is not None:
            return False  # a recording's intervals are fixed
        return True

    async def action_quit(self) -> None:
        self._exit_when_ready()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.specs))

    def action_replay_step(self, n: int) -> None:
        if self.replaying is not None:
            self.paused = True  # stepping is for looking closely
            self.replaying.step(n)

    def action_replay_speed(self) -> None:
        if self.replaying is not None:
            self.replaying.next_speed()

    def action_replay_goto(self) -> None:
        if self.replaying is not None:
            self.replaying.ask_time()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.replaying is not None:
            self.replaying.set_paused(self.paused)
        elif not self.paused:
            held, self._held = self._held, {}
            for tab, snapshot in held.items():
                view = self.view(tab)
                if view is not None:
                    view.show_snapshot(snapshot)
        self.main_screen.refresh_title()

    def action_show_tab(self, index: int) -> None:
        if index < len(self.specs):
            self.main_screen.activate(self.specs[index].id)
        else:
            self.notify(f"there is no tab {index + 1}", severity="warning", timeout=2)

    def action_next_tab(self) -> None:
        self.main_screen.step_tab(1)

    def action_previous_tab(self) -> None:
        self.main_screen.step_tab(-1)

    def action_sort(self, step: int) -> None:
        table = self.main_screen.current_table()
        if table is not None:
            table.cycle_sort(step)

    def action_reverse_sort(self) -> None:
        table = self.main_screen.current_table()
        if table is not None:
            table.toggle_reverse()

    def action_switch_table(self) -> None:
        self.main_screen.switch_table()

    def action_interval(self, step: int) -> None:
        new = step_interval(self.interval, step)
        if new == self.interval:
            self.notify(f"interval stays at {self.interval:g}s (limit)", timeout=2)
            return
        self.interval = new
        if self.collection is not None:
            self.collection.interval = new
        self.main_screen.refresh_title()
