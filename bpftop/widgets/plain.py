"""Text for widgets that is never parsed as markup.

Textual parses a ``str`` given to ``Static.update`` or ``notify`` as markup,
and its escape() misses forms such as ``[$x]``: a filter typed as ``[/]``
or a process named ``[@click=quit]`` would crash the console or act. Data
goes to widgets as rich ``Text`` built here, escaped by ``safetext``, with
styles applied to the fixed labels only.
"""

from __future__ import annotations

from typing import Tuple, Union

from rich.text import Text

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
