"""The only places bpftop reaches into Textual's private attributes, each
because Textual has no public API for it (tests/test_textual_internals.py
fails loudly when an upgrade moves them)."""

from __future__ import annotations

import io
from typing import Any, Optional

from rich.console import Console
from textual._time import get_time
from textual.app import App
from textual.geometry import Size
from textual.widget import Widget


def screen_text(app: App[Any]) -> str:
    """The current screen as plain text: no colour codes, box drawing kept.

    Textual exports a screen only as SVG (App.export_screenshot), which
    renders the screen's compositor exactly like this.
    """
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
                      color_system=None, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines()) + "\n"


def output_healthy(app: App[Any]) -> bool:
    """False once Textual's output thread has died (a write error on the
    terminal): the console can no longer be seen or driven.

    Textual keeps that thread to itself and says nothing when it dies.
    """
    driver = getattr(app, "_driver", None)
    if getattr(driver, "suspended", False):
        return True  # stopped by SIGTSTP: the thread comes back with SIGCONT
    writer = getattr(driver, "_writer_thread", None)
    return writer is None or writer.is_alive() or not app.is_running


def update_scrollbars(widget: Widget, virtual_size: Size) -> None:
    """Show or size a widget's scrollbars for a new virtual size, without a
    layout of the whole screen.

    Textual does this only in its screen-wide layout pass; the public way to
    get there, refresh(layout=True), lays out and redraws every widget.
    """
    widget._scroll_update(virtual_size)


# What parser_wait says when Textual's parser no longer keeps its deadline
# where it is read below: wake as often as Textual's own input loop does.
TEXTUAL_INPUT_POLL_S = 0.1


def parser_wait(parser: Any) -> Optional[float]:
    """Seconds until Textual's key parser stops waiting for the rest of an
    escape sequence (a lone Esc is a key only once that time has passed),
    0 if it is past; None when it waits for nothing.

    Textual's parser keeps that deadline to itself; its input loop wakes
    every 0.1 s to ask (``tick()``), whether or not anything is pending.
    """
    missing = object()
    deadline: Any = getattr(parser, "_timeout_time", missing)
    if deadline is missing:
        return TEXTUAL_INPUT_POLL_S
    if deadline is None:
        return None
    return max(0.0, float(deadline) - get_time())
