"""The Textual application: wires collectors (each in its own runner thread)
to tab views, and keys to actions."""

from __future__ import annotations

import asyncio
import functools
import signal
from typing import Dict, List, Optional, Sequence, Type

from textual.app import App
from textual.binding import Binding
from textual.widgets import TabbedContent

from .collectors.base import Collector
from .keys import KEYS
from .model import CollectorStatus
from .messages import SnapshotReady, StatusChanged
from .runner import CollectorRunner
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .tabs import TABS, TabSpec
from .views.base import TabView
from .views.disk import DiskView
from .views.syscalls import SyscallsView

VIEWS: Dict[str, Type[TabView]] = {"syscalls": SyscallsView, "disk": DiskView}

_PRIORITY = {"quit", "next_tab", "previous_tab"}

INTERVALS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


def step_interval(current: float, step: int) -> float:
    if step > 0:
        larger = [i for i in INTERVALS if i > current + 1e-9]
        return larger[0] if larger else current
    smaller = [i for i in INTERVALS if i < current - 1e-9]
    return smaller[-1] if smaller else current


class BpftopApp(App):
    TITLE = "bpftop"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        # Priority for keys the screen or a table would otherwise take first.
        Binding(k.keys, k.action, k.footer or k.description, show=bool(k.footer), priority=k.action in _PRIORITY)
        for k in KEYS
    ]

    def __init__(
        self,
        collectors: Sequence[Collector],
        interval: float = 1.0,
        initial_tab: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.collectors = list(collectors)
        self.interval = interval
        self.specs: List[TabSpec] = [TABS[c.tab] for c in self.collectors]
        self.initial_tab = initial_tab or self.specs[0].id
        self.runners: Dict[str, CollectorRunner] = {}
        self.paused = False
        self._held: Dict[str, object] = {}  # snapshots that arrived while paused
        # Latest status per tab; a view mounted after it arrived reads it here.
        self.statuses: Dict[str, CollectorStatus] = {}

    # -- lifecycle ----------------------------------------------------------
    def get_default_screen(self) -> MainScreen:
        return MainScreen(self.specs, VIEWS, self.initial_tab)

    def on_mount(self) -> None:
        self._install_signal_handlers()
        for collector in self.collectors:
            runner = CollectorRunner(
                collector,
                self.interval,
                on_snapshot=lambda snap, tab=collector.tab: self.post_message(SnapshotReady(tab, snap)),
                on_status=lambda status: self.post_message(StatusChanged(status)),
            )
            self.runners[collector.tab] = runner
            runner.start()

    def _install_signal_handlers(self) -> None:
        # SIGTERM from kill, SIGHUP when the SSH session drops: leave through
        # the normal exit path so the programs are detached and the terminal
        # restored.
        try:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, functools.partial(self.exit, return_code=128 + sig))
        except (RuntimeError, NotImplementedError, ValueError):
            pass  # not the main thread (tests): nothing to install

    def stop_collectors(self) -> None:
        for runner in self.runners.values():
            runner.stop()

    async def on_unmount(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_collectors)

    # -- collector messages -----------------------------------------------------
    def view(self, tab: str) -> Optional[TabView]:
        try:
            return self.screen.query_one(f"#view-{tab}", TabView)
        except Exception:
            return None

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if self.paused:
            self._held[message.tab] = message.snapshot
            return
        view = self.view(message.tab)
        if view is not None:
            view.show_snapshot(message.snapshot)

    def on_status_changed(self, message: StatusChanged) -> None:
        self.statuses[message.status.tab] = message.status
        view = self.view(message.status.tab)
        if view is not None:
            view.set_status(message.status)

    # -- actions ------------------------------------------------------------
    def _tabs(self) -> Optional[TabbedContent]:
        try:
            return self.screen.query_one(TabbedContent)
        except Exception:
            return None

    def current_view(self) -> Optional[TabView]:
        tabs = self._tabs()
        return self.view(tabs.active) if tabs and tabs.active else None

    def _refresh_title(self) -> None:
        if isinstance(self.screen, MainScreen):
            self.screen.refresh_title()

    def action_quit(self) -> None:
        self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([VIEWS[spec.id] for spec in self.specs]))

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            held, self._held = self._held, {}
            for tab, snapshot in held.items():
                view = self.view(tab)
                if view is not None:
                    view.show_snapshot(snapshot)
        self._refresh_title()

    def action_show_tab(self, index: int) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        if index < len(self.specs):
            tabs.active = self.specs[index].id
        else:
            self.notify(f"there is no tab {index + 1}", severity="warning", timeout=2)

    def _step_tab(self, step: int) -> None:
        tabs = self._tabs()
        if tabs is None:
            return
        ids = [s.id for s in self.specs]
        tabs.active = ids[(ids.index(tabs.active) + step) % len(ids)]

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
        for runner in self.runners.values():
            runner.interval = new
        self._refresh_title()
