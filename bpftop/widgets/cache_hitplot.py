"""The Cache tab's hit-ratio time series: a plotext line over the last
intervals, newest at the right."""

from __future__ import annotations

from collections import deque
from typing import Deque, List, Optional, Tuple

from textual_plotext import PlotextPlot

HISTORY = 120  # intervals kept


class HitRatioPlot(PlotextPlot):
    DEFAULT_CSS = """
    HitRatioPlot {
        height: 8;
        min-height: 5;
    }
    """

    def __init__(self, *, id: Optional[str] = None, history: int = HISTORY) -> None:
        super().__init__(id=id)
        # (epoch seconds, hit ratio % or None when nothing was read)
        self.points: Deque[Tuple[float, Optional[float]]] = deque(maxlen=history)

    def add(self, taken_at: float, ratio: Optional[float]) -> None:
        self.points.append((taken_at, ratio))
        self.replot()

    def series(self) -> Tuple[List[float], List[float]]:
        """Seconds before the newest point, and the ratios; intervals with
        no reads are left out (a ratio of nothing is not 0%)."""
        if not self.points:
            return [], []
        newest = self.points[-1][0]
        xs = [t - newest for t, r in self.points if r is not None]
        ys = [r for _, r in self.points if r is not None]
        return xs, ys

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
