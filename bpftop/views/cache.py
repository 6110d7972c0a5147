"""The Cache tab: per-process page-cache table, system summary line and a
hit-ratio time series."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ..model import CollectorState, CollectorStatus
from ..model.cache import CacheSnapshot
from ..render.cache import summary, table
from ..widgets.cache_hitplot import HitRatioPlot
from ..widgets.plain import plain, show_text
from ..widgets.top_table import TopTable
from .base import TabView


class CacheView(TabView):
    DEFAULT_CSS = """
    CacheView > .tab-summary {
        height: auto;
    }
    CacheView #cache-table {
        height: 1fr;
        border-top: solid $primary-darken-2;
    }
    """

    BINDINGS = [Binding("g", "toggle_plot", "show / hide the hit-ratio graph")]

    def compose(self) -> ComposeResult:
        yield self.status_widget()
        yield Static("", classes="tab-summary")
        yield HitRatioPlot(id="cache-plot")
        yield TopTable(id="cache-table")

    def describe_status(self, status: CollectorStatus) -> Text:
        if status.state is CollectorState.RUNNING and status.chosen is not None:
            # The rung's counting note is for doctor; here its short name,
            # kind and unit are enough (the help says the rest).
            chosen = status.chosen
            counts = f"; counts {chosen.unit.value}" if chosen.unit is not None else ""
            return plain(f"running on {chosen.label or chosen.strategy} ({chosen.kind.value}{counts})")
        return super().describe_status(status)

    def render_snapshot(self, snapshot: CacheSnapshot) -> None:
        show_text(self.query_one(".tab-summary", Static), plain(summary(snapshot)))
        self.query_one("#cache-plot", HitRatioPlot).show(self.history.get("read_hit_pct"))
        self.query_one("#cache-table", TopTable).show(table(snapshot))

    def action_toggle_plot(self) -> None:
        plot = self.query_one("#cache-plot", HitRatioPlot)
        plot.display = not plot.display
