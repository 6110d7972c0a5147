"""Text for widgets that is never parsed as markup.

Textual parses a ``str`` given to ``Static.update`` or ``notify`` as markup,
and its escape() misses forms such as ``[$x]``: a filter typed as ``[/]``
or a process named ``[@click=quit]`` would crash the console or act. Data
goes to widgets as rich ``Text`` built here, escaped by ``safetext``, with
styles applied to the fixed labels only.
"""

from __future__ import annotations

import weakref
from typing import Tuple, Union

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from ..safetext import safe_lines

Piece = Union[str, Tuple[str, str]]


def plain(text: str, style: str = "") -> Text:
    return Text(safe_lines(text), style=style)


def styled(*pieces: Piece) -> Text:
    """Pieces of text, each a plain string or ``(string, style)``; every
    string is escaped, none is parsed."""
    out = Text()
    for piece in pieces:
        if isinstance(piece, tuple):
            out.append(safe_lines(piece[0]), style=piece[1])
        else:
            out.append(safe_lines(piece))
    return out


# What each widget shows, as given to show_text (weak: widgets come and go).
_shown: weakref.WeakKeyDictionary[Static, Text] = weakref.WeakKeyDictionary()


def show_text(widget: Static, text: Text) -> None:
    """Put ``text`` in ``widget`` when it differs from what is there, and lay
    the screen out again only when its size can change: Static.update lays
    out the whole screen by default: at every interval, for every status
    line, a full layout and redraw of the screen."""
    before = _shown.get(widget)
    if before is not None and before == text:
        return
    _shown[widget] = text.copy()
    widget.update(text, layout=before is None or _may_resize(widget, before, text))


def _may_resize(widget: Static, before: Text, after: Text) -> bool:
    styles = widget.styles
    if styles.height is not None and not styles.height.is_auto and styles.width is not None \
            and not styles.width.is_auto:
        return False  # a fixed box: the text is cropped or wrapped inside it
    width = widget.content_size.width
    if width <= 0:
        return True

    def lines(text: Text) -> list:
        return [cell_len(line) for line in text.plain.split("\n")]

    old, new = lines(before), lines(after)
    # Each line within the width both times: no wrapping, the same height.
    return len(old) != len(new) or max(old + new) > width
