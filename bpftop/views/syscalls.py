"""The Syscalls tab: per-syscall and per-process top tables."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..messages import SwitchProbe
from ..model import SyscallsSnapshot
from ..render.syscalls import summary, tables
from ..widgets.plain import plain, show_text
from ..widgets.top_table import TopTable
from .base import TabView


class SyscallsView(TabView):
    DEFAULT_CSS = """
    SyscallsView #syscalls-table {
        height: 2fr;
    }
    SyscallsView #processes-table {
        height: 1fr;
        border-top: solid $primary-darken-2;
    }
    """
    BINDINGS = [
        Binding("L", "toggle_latency", "latency on/off"),
    ]

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield TopTable(id="syscalls-table")
        yield TopTable(id="processes-table")

    def render_snapshot(self, snapshot: SyscallsSnapshot) -> None:
        calls, procs = tables(snapshot)
        show_text(self.query_one(".tab-summary", Static), plain(summary(snapshot)))
        self.query_one("#syscalls-table", TopTable).show(calls)
        self.query_one("#processes-table", TopTable).show(procs)

    def action_toggle_latency(self) -> None:
        # The collector is the app's: the view only asks.
        self.post_message(SwitchProbe(self.tab, "latency"))
