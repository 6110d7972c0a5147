"""Help: every key, and how to read the numbers."""

from __future__ import annotations

from typing import Sequence, Type

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import KEYS
from ..views.base import TabView

class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def __init__(self, views: Sequence[Type[TabView]] = ()) -> None:
        super().__init__()
        self.views = list(views)

    def compose(self) -> ComposeResult:
        width = max(len(k.label) for k in KEYS) + 2
        keys = "\n".join(f"[b]{k.label.ljust(width)}[/b]{k.description}" for k in KEYS)
        with VerticalScroll(id="help-box"):
            yield Static("[b]bpftop keys[/b]  (Esc, q or ? closes)\n", id="help-title")
            yield Static(keys, id="help-keys")
            for view in self.views:
                yield Static("\n" + view_help(view), classes="help-notes")


def view_help(view: Type[TabView]) -> str:
    """A tab's own keys (its BINDINGS) and its notes on the numbers."""
    lines = [f"[b]{view.title} tab[/b]"]
    for binding in view.BINDINGS:
        if isinstance(binding, Binding):
            lines.append(f"  [b]{binding.key}[/b]  {binding.description}")
    lines.append(view.HELP.strip())
    return "\n".join(lines)
