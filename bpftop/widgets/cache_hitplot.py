"""The Cache tab's hit-ratio time series: a plotext line over the last
intervals, newest at the right. It keeps no points of its own: it draws the
series it is shown (the app's history holds them)."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence, Tuple

from textual_plotext import PlotextPlot

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


class HitRatioPlot(PlotextPlot):
    DEFAULT_CSS = """
    HitRatioPlot {
        height: 8;
        min-height: 5;
    }
    """

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.points: List[Point] = []

    def show(self, points: Iterable[Any]) -> None:
        self.points = list(points)
        self.replot()

    def series(self) -> Tuple[List[float], List[float]]:
        return seconds_ago(self.points)

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        xs, ys = self.series()
        latest = self.points[-1][1] if self.points else None
        last = "-" if latest is None else f"{latest:.1f}%"
        plt.title(f"system read hit ratio %  (now {last})")
        plt.ylim(0, 100)
        plt.yticks([0, 50, 100])
        if xs:
            plt.xlim(min(xs[0], -10.0), 0)
            plt.plot(xs, ys, marker="braille")
        else:
            plt.xlim(-10.0, 0)
        plt.xlabel("seconds ago")
        self.refresh()
