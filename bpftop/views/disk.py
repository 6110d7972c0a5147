"""The Disk tab: per-disk table, the log2 latency histogram of the selected
disk and operation, and IOPS / p99 over the last minutes."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from ..model.disk import GRAPH_SPAN_S, OPS, DiskRow, DiskSnapshot
from ..render.disk import UNITS, fmt_latency, summary, table
from ..safetext import safe
from ..widgets.disk_histogram import DiskHistogram
from ..widgets.plain import plain, show_text
from ..widgets.top_table import TopTable
from .base import TabView

OP_CHOICES: Tuple[Optional[str], ...] = (None,) + OPS


class DiskView(TabView):
    DEFAULT_CSS = """
    DiskView #disk-table {
        height: auto;
        max-height: 7;
    }
    DiskView #disk-lower {
        height: 1fr;
        border-top: solid $primary-darken-2;
    }
    DiskView #disk-series {
        width: 1fr;
        padding-left: 1;
    }
    DiskView .disk-series-label {
        height: 1;
    }
    DiskView Sparkline {
        height: 1fr;
        min-height: 1;
    }
    """

    BINDINGS = [
        # Not in the footer, which keeps to the global keys; help lists them.
        Binding("c", "toggle_cumulative", "histogram and table: this interval / since start", show=False),
        Binding("o", "next_op", "histogram: next operation (all, read, write, flush, discard, other)", show=False),
        Binding("m", "toggle_unit", "latency in microseconds / milliseconds", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cumulative = False
        self.op_index = 0
        self.unit = UNITS[0]
        self.selected: Optional[str] = None

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield TopTable(id="disk-table")
        with Horizontal(id="disk-lower"):
            yield DiskHistogram(id="disk-hist")
            with Vertical(id="disk-series"):
                yield Static("IOPS", id="disk-iops-label", classes="disk-series-label")
                yield Sparkline([], summary_function=max, id="disk-iops")
                yield Static("p99", id="disk-p99-label", classes="disk-series-label")
                yield Sparkline([], summary_function=max, id="disk-p99")

    # -- state ----------------------------------------------------------------
    @property
    def op(self) -> Optional[str]:
        return OP_CHOICES[self.op_index]

    def _row(self) -> Optional[DiskRow]:
        snap: Optional[DiskSnapshot] = self.snapshot
        if snap is None:
            return None
        rows = snap.by_disk(self.cumulative)
        if self.selected in rows:
            return rows[self.selected]
        return None

    # -- rendering ------------------------------------------------------------
    def render_snapshot(self, snapshot: DiskSnapshot) -> None:
        show_text(self.query_one(".tab-summary", Static), plain(summary(snapshot)))
        widget = self.query_one("#disk-table", TopTable)
        widget.show(table(snapshot, self.unit, self.cumulative))
        if self.selected is None or self.selected not in snapshot.by_disk(self.cumulative):
            view = widget.view
            self.selected = str(view.rows[0][0]) if view and view.rows else None
        self._render_detail()

    def _render_detail(self) -> None:
        hist = self.query_one("#disk-hist", DiskHistogram)
        row = self._row()
        span = "since start" if self.cumulative else "this interval"
        op = self.op or "all ops"
        if row is None:
            hist.show(f"latency ({op}, {span}): no disk selected", (), self.unit)
        else:
            max_ns = row.max_ns(self.op)
            fmt = fmt_latency(self.unit)
            p99 = row.percentile_us(0.99, self.op)
            title = (
                f"{safe(row.disk)} {op}, {span}\n"
                f"p99 {fmt(p99)}  max {fmt(None if max_ns is None else max_ns / 1e3)} {self.unit}"
            )
            hist.show(title, row.hist(self.op), self.unit)
        # (IOPS, p99 us) per interval, from the app's history
        series = self.history.get(self.selected or "").values()
        iops = [s[0] for s in series]
        p99s = [s[1] or 0.0 for s in series]
        minutes = GRAPH_SPAN_S / 60
        fmt = fmt_latency(self.unit)
        name = self.selected or "-"
        now_iops = f"{iops[-1]:.0f}" if iops else "-"
        show_text(
            self.query_one("#disk-iops-label", Static),
            plain(f"IOPS {name} (last {minutes:.0f} min)  now {now_iops}  max {max(iops, default=0):.0f}")
        )
        now_p99 = series[-1][1] if series else None
        show_text(
            self.query_one("#disk-p99-label", Static),
            plain(f"p99 {self.unit}  now {fmt(now_p99)}  max {fmt(max(p99s) if p99s else None)}")
        )
        self._plot("#disk-iops", iops)
        self._plot("#disk-p99", [p / 1e3 if self.unit == "ms" else p for p in p99s])

    def _plot(self, selector: str, values: List[float]) -> None:
        # One column per sample, newest on the right: Sparkline stretches
        # a short series over its whole width otherwise.
        spark = self.query_one(selector, Sparkline)
        width = spark.size.width or 40
        values = values[-width:]
        spark.data = [0.0] * (width - len(values)) + values

    def histogram_lines(self) -> List[str]:
        hist = self.query_one("#disk-hist", DiskHistogram)
        return hist.lines(max(20, hist.size.width))

    # -- events and keys ------------------------------------------------------
    def on_top_table_row_highlighted(self, event: TopTable.RowHighlighted) -> None:
        key = event.key
        if key and key != self.selected:
            self.selected = key
            self._render_detail()

    def _rerender(self) -> None:
        if self.snapshot is not None:
            self.query_one("#disk-table", TopTable).show(table(self.snapshot, self.unit, self.cumulative))
            self._render_detail()

    def action_toggle_cumulative(self) -> None:
        self.cumulative = not self.cumulative
        self._rerender()

    def action_next_op(self) -> None:
        self.op_index = (self.op_index + 1) % len(OP_CHOICES)
        self._rerender()

    def action_toggle_unit(self) -> None:
        self.unit = UNITS[(UNITS.index(self.unit) + 1) % len(UNITS)]
        self._rerender()
