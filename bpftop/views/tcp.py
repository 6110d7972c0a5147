"""The TCP tab: connects per second, per-destination and per-process tables,
and a live event log (newest on top) that can be frozen while the rest
keeps updating."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, List

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from ..model.tcp import TcpSnapshot
from ..render.tcp import events_table, sample_note, since_line, summary, tables
from ..tables import Table, fmt_rate
from ..widgets.plain import plain, show_text, styled
from ..widgets.tcp_log import TcpEventLog
from ..widgets.top_table import TopTable
from .base import TabView

# Rows the screen shows per aggregate table; the text and JSON output keep all.
SCREEN_ROWS = 1000


def _busiest(table: Table) -> Table:
    """A port scan makes thousands of rows; the screen keeps the busiest."""
    if len(table.rows) <= SCREEN_ROWS:
        return table
    return replace(table, rows=table.sorted_by(table.sort_column).rows[:SCREEN_ROWS])


class TcpView(TabView):
    DEFAULT_CSS = """
    TcpView #tcp-rate-row {
        height: 3;
    }
    TcpView #tcp-rate-label {
        width: 18;
    }
    TcpView #tcp-rate {
        width: 1fr;
        height: 3;
    }
    TcpView #tcp-tables {
        height: 1fr;
    }
    TcpView #tcp-destinations-table {
        width: 1fr;
    }
    TcpView #tcp-processes-table {
        width: 1fr;
        border-left: solid $primary-darken-2;
    }
    TcpView #tcp-log-title {
        height: 1;
        background: $primary-darken-3;
    }
    TcpView #tcp-events-table {
        height: 1fr;
    }
    /* Below NARROW columns the two tables cannot sit side by side and keep
       their key columns: they stack, and the rate graph gives up two lines. */
    TcpView.-narrow #tcp-tables {
        layout: vertical;
    }
    TcpView.-narrow #tcp-processes-table {
        border-left: none;
        border-top: solid $primary-darken-2;
    }
    TcpView.-narrow #tcp-rate-row, TcpView.-narrow #tcp-rate {
        height: 1;
    }
    TcpView.-narrow #tcp-rate-label {
        width: 34;
    }
    """
    NARROW = 110

    BINDINGS = [Binding("f", "freeze_log", "freeze / resume the event log (the tables keep updating)")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frozen = False

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        with Horizontal(id="tcp-rate-row"):
            yield Static("connects/s", id="tcp-rate-label")
            yield Sparkline([], id="tcp-rate")
        with Horizontal(id="tcp-tables"):
            yield TopTable(id="tcp-destinations-table")
            yield TopTable(id="tcp-processes-table")
        yield Static("Connects, newest first", id="tcp-log-title")
        yield TcpEventLog(id="tcp-events-table")

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < self.NARROW, "-narrow")
        if self.snapshot is not None:
            self._rate_label()

    def render_snapshot(self, snapshot: TcpSnapshot) -> None:
        dests, procs = tables(snapshot)
        show_text(self.query_one(".tab-summary", Static), plain(summary(snapshot)))
        history = self._rate_label()
        self.query_one("#tcp-rate", Sparkline).data = history or [0.0]
        self.query_one("#tcp-destinations-table", TopTable).show(_busiest(dests))
        self.query_one("#tcp-processes-table", TopTable).show(_busiest(procs))
        self._log_title(snapshot)
        if not self.frozen:
            self.query_one("#tcp-events-table", TopTable).show(events_table(snapshot.events))

    def _rate_label(self) -> List[float]:
        history = self.history.get("connects_per_s").values()
        now = history[-1] if history else 0.0
        peak = max(history, default=0.0)
        lines = [f"connects/s {fmt_rate(now)}", f"peak {fmt_rate(peak)}", f"{len(history)} intervals"]
        show_text(
            self.query_one("#tcp-rate-label", Static),
            Text("  ".join(lines[:2]) if self.has_class("-narrow") else "\n".join(lines))
        )
        return history

    def _log_title(self, snapshot: TcpSnapshot) -> None:
        state = [("  "), (" FROZEN ", "reverse"), " (f resumes)"] if self.frozen else ["  (f freezes)"]
        show_text(
            self.query_one("#tcp-log-title", Static),
            styled(f"Connects, newest first: {len(snapshot.events)} kept{sample_note(snapshot)}, "
                   f"{since_line(snapshot)}", *state)
        )

    def action_freeze_log(self) -> None:
        self.frozen = not self.frozen
        if self.snapshot is not None:
            self._log_title(self.snapshot)
            if not self.frozen:
                self.query_one("#tcp-events-table", TopTable).show(events_table(self.snapshot.events))
