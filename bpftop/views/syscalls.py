"""The Syscalls tab: per-syscall and per-process top tables."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from ..model import SyscallsSnapshot
from ..render.syscalls import summary, tables
from ..widgets.plain import plain
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

    tab = "syscalls"
    title = "Syscalls"
    HELP = """\
COUNT: calls that returned in the interval (counted at syscall exit, like
syscount; exit and exit_group never return and are not counted). A clone,
clone3, fork or vfork counts once, in the caller, as strace -f counts it
(syscount also counts the new task's return from it).
ERRORS: calls that returned -4095..-1 (an errno). TOTAL and AVG: time from
entry to exit, for calls whose entry was seen. PER SEC: COUNT / interval.
The process filter (-p) is applied in the kernel.
"""

    FIELDS = ("syscall", "count", "errors", "pid", "comm")

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield TopTable(id="syscalls-table")
        yield TopTable(id="processes-table")

    def render_snapshot(self, snapshot: SyscallsSnapshot) -> None:
        calls, procs = tables(snapshot)
        self.query_one(".tab-summary", Static).update(plain(summary(snapshot)))
        self.query_one("#syscalls-table", TopTable).show(calls)
        self.query_one("#processes-table", TopTable).show(procs)
