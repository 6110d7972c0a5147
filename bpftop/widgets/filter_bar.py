"""The filter input: opens under the tabs with ``/``, reports the text once
typing pauses (Enter at once), shows a parse error under the input, and
closes with Esc or Enter."""

from __future__ import annotations

from typing import Any, Optional

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

from .plain import plain


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        display: none;
        border-top: solid $primary;
    }
    FilterBar.-open {
        display: block;
    }
    FilterBar > Input, FilterBar > Input:focus {
        border: none;
        height: 1;
        padding: 0 1;
    }
    FilterBar > #filter-help {
        color: $text-muted;
        padding: 0 1;
    }
    FilterBar > #filter-help.-error {
        color: $error;
    }
    """
    BINDINGS = [Binding("escape", "close", "close filter", show=False)]

    # Applying a filter re-renders every table of the tab: done per
    # keystroke, 2,000 keys typed fast queued minutes of work ahead of q.
    DEBOUNCE_S = 0.25

    HINT = "pid=123 comm~regex port=443 disk=vda syscall=read  != !~ > <  (Enter applies, Esc closes)"

    class Edited(Message):
        """The text changed (``final`` when Enter was pressed)."""

        def __init__(self, text: str, final: bool) -> None:
            super().__init__()
            self.text = text
            self.final = final

    class Closed(Message):
        pass

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: Optional[Timer] = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter", id="filter-input")
        yield Static(self.HINT, id="filter-help")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, text: str, tab_title: str) -> None:
        self.add_class("-open")
        field = self.query_one(Input)
        field.placeholder = f"filter {tab_title}"
        field.value = text
        field.cursor_position = len(text)
        self.show_error("")
        # At once, not deferred: keys typed right after / belong to the input.
        self.screen.set_focus(field)

    def action_close(self) -> None:
        self._cancel_pending()
        self.remove_class("-open")
        self.post_message(self.Closed())

    def show_error(self, message: str) -> None:
        hint = self.query_one("#filter-help", Static)
        hint.update(plain(message or self.HINT))
        hint.set_class(bool(message), "-error")

    def show_hint(self, message: str) -> None:
        hint = self.query_one("#filter-help", Static)
        hint.update(plain(message))
        hint.set_class(False, "-error")

    @property
    def typing(self) -> bool:
        """Text typed but not yet applied (the debounce is running)."""
        return self._pending is not None

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._cancel_pending()
        if self.is_open:
            self._pending = self.set_timer(self.DEBOUNCE_S, self._typed)

    def _typed(self) -> None:
        self._pending = None
        if self.is_open:
            self.post_message(self.Edited(self.query_one(Input).value, final=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._cancel_pending()
        self.post_message(self.Edited(event.value, final=True))
