"""The BPF tab: every loaded BPF program (sortable table), the totals line,
and a detail pane for the selected program: its run-time history, maps and
owners."""

from __future__ import annotations

from typing import Any, List, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from ..model import CollectorState, CollectorStatus
from ..model.bpf import BpfSnapshot, ProgramRow
from ..render.bpf import detail_lines, fmt_avg, summary, table
from ..widgets.plain import plain, show_text
from ..widgets.top_table import TopTable
from .base import TabView


class BpfView(TabView):
    DEFAULT_CSS = """
    BpfView #bpf-table {
        height: 1fr;
        border-top: solid $primary-darken-2;
    }
    BpfView > .tab-summary {
        height: auto;
    }
    BpfView #bpf-detail {
        height: auto;
        max-height: 9;
        border-top: solid $primary-darken-2;
    }
    BpfView #bpf-history-label {
        height: 1;
    }
    BpfView #bpf-history {
        height: 1;
    }
    BpfView #bpf-detail-text {
        height: auto;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.selected: Optional[int] = None

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield TopTable(id="bpf-table")
        with Vertical(id="bpf-detail"):
            yield Static("", id="bpf-history-label")
            yield Sparkline([], summary_function=max, id="bpf-history")
            yield Static("select a program for its maps and owners", id="bpf-detail-text")

    def describe_status(self, status: CollectorStatus) -> Text:
        if status.state is CollectorState.RUNNING and status.chosen is not None:
            return plain(f"running on {status.chosen.label or status.chosen.strategy} (no BPF program of its own)")
        return super().describe_status(status)

    def render_snapshot(self, snapshot: BpfSnapshot) -> None:
        show_text(self.query_one(".tab-summary", Static), plain(summary(snapshot)))
        self.query_one("#bpf-table", TopTable).show(table(snapshot))
        if self.selected is None or self._row(self.selected) is None:
            shown = self.query_one("#bpf-table", TopTable).view
            self.selected = int(shown.rows[0][0]) if shown is not None and shown.rows else None
        self._render_detail()

    def _row(self, prog_id: int) -> Optional[ProgramRow]:
        snap: Optional[BpfSnapshot] = self.snapshot
        if snap is None:
            return None
        for row in snap.rows:
            if row.id == prog_id:
                return row
        return None

    def detail_text(self) -> List[str]:
        row = self._row(self.selected) if self.selected is not None else None
        if row is None or self.snapshot is None:
            return []
        return detail_lines(self.snapshot, row)

    def _render_detail(self) -> None:
        row = self._row(self.selected) if self.selected is not None else None
        label = self.query_one("#bpf-history-label", Static)
        spark = self.query_one("#bpf-history", Sparkline)
        text = self.query_one("#bpf-detail-text", Static)
        if row is None:
            show_text(label, plain(""))
            spark.data = [0.0]
            show_text(text, plain("no program selected"))
            return
        values = self.history.get(("avg_ns", row.id)).values()
        known = [v for v in values if v is not None]
        now = "stats off" if row.cost is None else f"{fmt_avg(row.avg_ns or 0.0)} ns"
        show_text(label, plain(f"prog {row.id} avg ns per run, last {len(values)} readings: now {now}"
                               f"  max {fmt_avg(max(known)) if known else '-'}"))
        width = spark.size.width or 40
        series = [float(v) if v is not None else 0.0 for v in values][-width:]
        spark.data = [0.0] * (width - len(series)) + series
        show_text(text, Text("\n".join(detail_lines(self.snapshot, row))))

    def on_top_table_row_highlighted(self, event: TopTable.RowHighlighted) -> None:
        key = event.key
        if key and key.isdigit() and int(key) != self.selected:
            self.selected = int(key)
            if self.snapshot is not None:
                self._render_detail()
