"""The Processes tab: per-process counts, the processes that lived less than
an interval, and one event log at a time (execs, opens or signals; `e`
switches) that can be frozen while the rest keeps updating."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Dict, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..filters import NO_FILTER, Filter, Term
from ..model.procs import ProcsSnapshot, signal_name, signal_number
from ..render.procs import (
    execs_table,
    opens_table,
    processes_table,
    short_lived_table,
    signals_table,
    since_line,
    summary,
)
from ..tables import Table
from ..widgets.plain import plain, styled
from ..widgets.tcp_log import TcpEventLog
from ..widgets.top_table import TopTable
from .base import TabView

SCREEN_ROWS = 1000
LOGS = ("execs", "opens", "signals")
_LOG_TABLES: Dict[str, Callable[[Any], Table]] = {"execs": execs_table, "opens": opens_table, "signals": signals_table}


def _busiest(table: Table) -> Table:
    if len(table.rows) <= SCREEN_ROWS:
        return table
    return replace(table, rows=table.sorted_by(table.sort_column).rows[:SCREEN_ROWS])


def canonical_signals(flt: Filter) -> Filter:
    """``sig=9``, ``sig=kill`` and ``sig=SIGKILL`` all name the log's
    SIGKILL; a value that names no signal is left as typed (matches nothing)."""
    terms = []
    for t in flt.terms:
        if t.field == "sig" and t.op in ("=", "!="):
            values = tuple(signal_name(n) if (n := signal_number(str(v))) is not None else v for v in t.values)
            t = Term(t.field, t.op, values, t.text, t.regex)
        terms.append(t)
    return Filter(tuple(terms))


class ProcsView(TabView):
    DEFAULT_CSS = """
    ProcsView #procs-processes-table {
        height: 2fr;
    }
    ProcsView .procs-title {
        height: 1;
        background: $primary-darken-3;
    }
    ProcsView #procs-short-table {
        height: 1fr;
    }
    ProcsView .procs-log {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("e", "next_log", "event log: execs, opens, signals"),
        Binding("f", "freeze_log", "freeze / resume the event log (the tables keep updating)"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frozen = False
        self.shown_log = LOGS[0]

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield TopTable(id="procs-processes-table")
        yield Static("Short-lived: exited this interval, lived less than one", id="procs-short-title",
                     classes="procs-title")
        yield TopTable(id="procs-short-table")
        yield Static("", id="procs-log-title", classes="procs-title")
        for name in LOGS:
            table = TcpEventLog(id=f"procs-{name}-table")
            table.add_class("procs-log")
            table.display = name == self.shown_log
            yield table

    def apply_filter(self, row_filter: Filter, pinned: Filter = NO_FILTER, ignored: Sequence[str] = ()) -> None:
        super().apply_filter(row_filter, pinned, ignored)
        if any(t.field == "sig" for t in row_filter.terms):
            for table in self.tables():
                table.set_filter(canonical_signals(row_filter))

    def render_snapshot(self, snapshot: ProcsSnapshot) -> None:
        self.query_one(".tab-summary", Static).update(plain(summary(snapshot)))
        self.query_one("#procs-processes-table", TopTable).show(_busiest(processes_table(snapshot)))
        self.query_one("#procs-short-table", TopTable).show(_busiest(short_lived_table(snapshot.short_lived)))
        self._log_title(snapshot)
        if not self.frozen:
            self._show_logs(snapshot)

    def _show_logs(self, snapshot: ProcsSnapshot) -> None:
        # Only the log on screen is redrawn (500 rows each); the others are
        # drawn when switched to.
        name = self.shown_log
        self.query_one(f"#procs-{name}-table", TopTable).show(_LOG_TABLES[name](getattr(snapshot, name)))

    def _log_title(self, snapshot: ProcsSnapshot) -> None:
        kept = len(getattr(snapshot, self.shown_log))
        state = ["  ", (" FROZEN ", "reverse"), " (f resumes)"] if self.frozen else ["  (f freezes)"]
        self.query_one("#procs-log-title", Static).update(
            styled(f"{self.shown_log.capitalize()} (e: next log), newest first: {kept} kept, {since_line(snapshot)}",
                   *state)
        )

    def action_next_log(self) -> None:
        self.shown_log = LOGS[(LOGS.index(self.shown_log) + 1) % len(LOGS)]
        for name in LOGS:
            self.query_one(f"#procs-{name}-table", TopTable).display = name == self.shown_log
        if self.snapshot is not None:
            self._log_title(self.snapshot)
            if not self.frozen:
                self._show_logs(self.snapshot)

    def action_freeze_log(self) -> None:
        self.frozen = not self.frozen
        if self.snapshot is not None:
            self._log_title(self.snapshot)
            if not self.frozen:
                self._show_logs(self.snapshot)
