"""Help: every key, and how to read the numbers."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import KEYS

NOTES = """\
[b]Syscalls tab[/b]
COUNT: calls that returned in the interval (counted at syscall exit, like
syscount; exit and exit_group never return and are not counted).
ERRORS: calls that returned -4095..-1 (an errno). TOTAL and AVG: time from
entry to exit, for calls whose entry was seen. PER SEC: COUNT / interval.
The process filter (-p) is applied in the kernel.
"""


class HelpScreen(ModalScreen):
    CSS_PATH = "help.tcss"
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def compose(self) -> ComposeResult:
        width = max(len(k.label) for k in KEYS) + 2
        keys = "\n".join(f"[b]{k.label.ljust(width)}[/b]{k.description}" for k in KEYS)
        with VerticalScroll(id="help-box"):
            yield Static("[b]bpftop keys[/b]  (Esc, q or ? closes)\n", id="help-title")
            yield Static(keys, id="help-keys")
            yield Static("\n" + NOTES, id="help-notes")
