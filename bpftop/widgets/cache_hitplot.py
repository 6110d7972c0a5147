"""The Cache tab's hit-ratio time series: a plotext line over the last
intervals, newest at the right. It keeps no points of its own: it draws the
series it is shown (the app's history holds them).

The plot itself (``hitplot_canvas``) is imported in a worker thread once
this widget is mounted, so plotext's import does not delay the console's
first frame; until then the widget says the graph is loading.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

from rich.text import Text
from textual.widget import Widget

Point = Tuple[float, Optional[float]]  # (epoch seconds, hit ratio % or None when nothing was read)


def seconds_ago(points: Sequence[Point]) -> Tuple[List[float], List[float]]:
    """Seconds before the newest point, and the ratios; intervals with no
    reads are left out (a ratio of nothing is not 0%)."""
    if not points:
        return [], []
    newest = points[-1][0]
    xs = [t - newest for t, r in points if r is not None]
    ys = [r for _, r in points if r is not None]
    return xs, ys


class HitRatioPlot(Widget):
    DEFAULT_CSS = """
    HitRatioPlot {
        height: 8;
        min-height: 5;
    }
    HitRatioPlot > HitRatioCanvas {
        height: 1fr;
    }
    """

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.points: List[Point] = []
        self.canvas: Optional[Any] = None  # the HitRatioCanvas, once plotext is loaded

    def on_mount(self) -> None:
        self.run_worker(self._load, thread=True, group="hitplot", exit_on_error=False)

    def _load(self) -> None:
        from .hitplot_canvas import HitRatioCanvas

        self.app.call_from_thread(self._mount_canvas, HitRatioCanvas)

    def _mount_canvas(self, canvas_class: Any) -> None:
        if self.canvas is None and self.is_mounted:
            self.canvas = canvas_class()
            self.mount(self.canvas)
            self.replot()

    def render(self) -> Text:
        return Text("system read hit ratio %  (graph loading)", style="dim")

    def show(self, points: Iterable[Any]) -> None:
        self.points = list(points)
        self.replot()

    def series(self) -> Tuple[List[float], List[float]]:
        return seconds_ago(self.points)

    def replot(self) -> None:
        if self.canvas is None:
            return
        xs, ys = self.series()
        self.canvas.draw(xs, ys, self.points[-1][1] if self.points else None)
