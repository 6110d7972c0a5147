"""The plotext drawing of the Cache tab's hit ratio. Kept apart from
``cache_hitplot`` because importing plotext takes about 0.3 s: the console
loads it after its first frame, not before."""

from __future__ import annotations

from typing import List, Optional

from textual_plotext import PlotextPlot


class HitRatioCanvas(PlotextPlot):
    def draw(self, xs: List[float], ys: List[float], latest: Optional[float]) -> None:
        plt = self.plt
        plt.clear_data()
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
