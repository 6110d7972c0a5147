"""The console's first screen, drawn before Textual loads.

On a small server Python needs 0.15 to 0.3 s to import Textual and draw
even a bare app, and bpftop's widgets, styles and layout take as long again:
over SSH the operator would look at a blank terminal for up to a second. The
title line, the tab bar and the key bar are known from the command line, so
they go to the terminal at once, where Textual's first frame will put them.

Until Textual takes the terminal, keys typed must neither echo over that
screen nor wait for Enter: echo and line editing go off with the paint. The
terminal's settings from before are what Textual's driver restores at exit
(``adopt``); if the console ends before Textual starts, ``undo`` restores
them and leaves the screen.
"""

from __future__ import annotations

import contextlib
import os
import termios
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from .safetext import safe
from .stderr_guard import screen_fd

# Alternate screen, cursor hidden, cleared, at the top left.
_ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
_LEAVE = "\x1b[?25h\x1b[?1049l"
_BOLD, _DIM, _PLAIN = "\x1b[1m", "\x1b[2m", "\x1b[0m"


@dataclass(frozen=True)
class _Painted:
    fd: int  # the terminal drawn on
    saved: Optional[List[Any]]  # its settings before (None: not readable)


_painted: Optional[_Painted] = None


def frame(title: str, tabs: Sequence[str], active: int, width: int, height: int) -> str:
    """The first screen for a ``width`` x ``height`` terminal, laid out as
    Textual's will be: the title line after the name, the tab bar with the
    ``active`` tab's rule bright, what is happening, and the key bar on the
    last line. Every piece is cut at the right edge (no line wraps), and
    the title and tab names, which come from the host, are made safe."""
    title, tabs = safe(title), [safe(t) for t in tabs]
    room = max(width - 1, 0)

    def at(row: int, *pieces: Tuple[str, str]) -> str:
        out, used = [f"\x1b[{row};1H"], 0
        for text, style in pieces:
            cut = text[:max(room - used, 0)]
            used += len(cut)
            out.append(f"{style}{cut}{_PLAIN}" if style and cut else cut)
        return "".join(out)

    labels = [f"{i} {t}" for i, t in enumerate(tabs, start=1)]
    rule = [("\u2501" * width, _DIM)]
    if 0 <= active < len(labels):
        start = 1 + sum(len(label) + 2 for label in labels[:active])
        rule = [("\u2501" * start, _DIM), ("\u2501" * len(labels[active]), _BOLD),
                ("\u2501" * width, _DIM)]
    rows = [at(1, (" ", ""), ("bpftop", _BOLD), (f"  {title}", "")),
            at(2, (" " + "  ".join(labels), "")),
            at(3, *rule),
            at(4, (" starting: loading the console", _DIM))]
    if height > 5:
        rows.append(at(height, (" q quit  ? help", "")))
    return "".join(rows)


def paint(title: str, tabs: Sequence[str], active: int) -> None:
    """Draw the first screen and stop the terminal's echo and line editing.
    Nothing happens when the screen is not a terminal."""
    global _painted
    fd = screen_fd()
    if _painted is not None or not os.isatty(fd) or not os.isatty(0):
        return
    saved: Optional[List[Any]] = None
    with contextlib.suppress(termios.error):
        saved = termios.tcgetattr(0)
        quiet = termios.tcgetattr(0)  # a copy to change
        quiet[3] &= ~(termios.ECHO | termios.ICANON)  # lflag; ISIG stays: Ctrl-C still ends a slow start
        quiet[6][termios.VMIN], quiet[6][termios.VTIME] = 1, 0
        termios.tcsetattr(0, termios.TCSANOW, quiet)
    _painted = _Painted(fd, saved)
    with contextlib.suppress(OSError):  # a terminal gone already: Textual will find out
        size = os.get_terminal_size(fd)
        text = _ENTER + frame(title, tabs, active, size.columns, size.lines)
        os.write(fd, text.encode("utf-8", "replace"))


def adopt() -> Optional[List[Any]]:
    """Textual's driver has the terminal now: the settings it should
    restore at exit, or None when nothing was painted."""
    global _painted
    painted, _painted = _painted, None
    return painted.saved if painted is not None else None


def undo() -> None:
    """The console ends before Textual took the terminal: put it back."""
    global _painted
    painted, _painted = _painted, None
    if painted is None:
        return
    with contextlib.suppress(OSError, termios.error):
        if painted.saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, painted.saved)
        os.write(painted.fd, _LEAVE.encode())


@contextlib.contextmanager
def shown(title: str, tabs: Sequence[str], active: int) -> Iterator[None]:
    paint(title, tabs, active)
    try:
        yield
    finally:
        undo()
