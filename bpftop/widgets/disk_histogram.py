"""A log2 latency histogram drawn with block characters: one line per
bucket, ``low -> high  count  bar``. Hand-rolled rather than plotted, so it
stays crisp over SSH and fits whatever width it gets."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.text import Text
from textual.widget import Widget

from ..render.disk import hist_rows

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: int, top: int, width: int) -> str:
    """A bar of ``width`` cells at most, with eighth-cell precision."""
    if top <= 0 or width <= 0 or value <= 0:
        return ""
    eighths = max(1, round(8 * width * value / top))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


class DiskHistogram(Widget):
    DEFAULT_CSS = """
    DiskHistogram {
        height: 1fr;
        width: 1fr;
    }
    """

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.title = ""
        self.hist: Sequence[int] = ()
        self.unit = "us"

    def show(self, title: str, hist: Sequence[int], unit: str) -> None:
        self.title, self.hist, self.unit = title, tuple(hist), unit
        self.refresh()

    def lines(self, width: int) -> list:
        """The histogram as plain lines for ``width`` cells (tests read it)."""
        out = [line[:width] for line in self.title.split("\n")]
        rows = hist_rows(self.hist, self.unit)
        if not rows:
            out.append("  (no timed I/O)")
            return out
        lw = max(len(r[0]) for r in rows)
        hw = max(len(r[1]) for r in rows)
        cw = max(5, max(len(str(r[2])) for r in rows))
        room = max(1, width - (lw + 4 + hw + 1 + cw + 2))
        top = max(r[2] for r in rows)
        for low, high, n in rows:
            out.append(f"{low:>{lw}} -> {high:<{hw}} {n:>{cw}} {bar(n, top, room)}")
        return out

    def render(self) -> Text:
        width = max(20, self.size.width)
        lines = self.lines(width)
        head = len(self.title.split("\n"))
        text = Text("\n".join(lines[:head]) + "\n", style="bold")
        for line in lines[head:]:
            text.append(line + "\n")
        text.rstrip()
        return text
