"""The keys that work here, on one line at the bottom of a screen.

It shows what Textual's Footer shows (each shown binding of the focused
widget, its screen and the app, once per action), as one widget. The
Footer rebuilds one widget per key whenever the focus moves, which every
tab switch does, and restyling those widgets was the largest single part
of a switch (about a third of its time in a profile). This line is
rebuilt only when the keys it shows change, and redrawn as one piece of
text.
"""

from __future__ import annotations

from typing import List, Tuple

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget

_DIM = Style(dim=True)
# (key as Textual names it, key as shown, description, enabled)
Shown = Tuple[Tuple[str, str, str, bool], ...]


class KeyBar(Widget):
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
    }
    KeyBar > .key-bar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .key-bar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    """

    keys: reactive[Shown] = reactive((), layout=False)

    def __init__(self) -> None:
        super().__init__()
        self._spans: List[Tuple[int, int, str]] = []  # (first cell, end, key) for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:
            return
        seen = set()
        shown = []
        for _, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                shown.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        self.keys = tuple(shown)  # a reactive: an unchanged line is not redrawn

    def watch_keys(self, keys: Shown) -> None:
        self._spans = []
        start = 0
        for key, display, description, _ in keys:
            end = start + cell_len(f" {display} {description} ")
            self._spans.append((start, end, key))
            start = end

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        text_style = self.get_component_rich_style("key-bar--description")
        line = Text(no_wrap=True, overflow="crop")
        for _, display, description, enabled in self.keys:
            line.append(f" {display} ", key_style)
            line.append(f"{description} ", text_style if enabled else text_style + _DIM)
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
