"""The main screen: a title bar, one tab per registry entry, the filter bar
and the key footer; it knows its views and moves between tabs and tables."""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from ..tabs import TabSpec
from ..views.base import TabView
from ..widgets.filter_bar import FilterBar
from ..widgets.key_bar import KeyBar
from ..widgets.plain import show_text
from ..widgets.top_table import TopTable


class Tabs(TabbedContent):
    """TabbedContent whose tab only the operator's keys and clicks change.

    TabbedContent shows the pane of whatever widget gets focus, by a
    TabPane.Focused message that each pane posts from its own message queue:
    after keys 1 3 1 4 in a burst the four notices reached this widget in
    another order (1, 4, 3) and the last one, tab 3's, won. Only a visible
    pane's widgets can be clicked, and Tab is bpftop's next-tab key, so a
    focus notice is never the operator's doing.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.stop()
        # Textual runs the handler of every class in the MRO: without this,
        # TabbedContent's own one still switched to the notice's pane.
        event.prevent_default()


class MainScreen(Screen[None]):

    def __init__(self, tabs: Sequence[TabSpec], initial: str, title: Callable[[], Text]) -> None:
        """``title`` makes the title line: the app knows what it says."""
        super().__init__()
        self.tab_specs = list(tabs)
        self.initial = initial
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Static(self.title_text(), id="titlebar")
        with Vertical(id="body"):
            with Tabs(initial=self.initial, id="tabs"):
                for i, spec in enumerate(self.tab_specs, start=1):
                    with TabPane(f"{i} {spec.title}", id=spec.id):
                        view = spec.view()
                        yield view(tab=spec.id, title=spec.title, fields=spec.filter_fields, id=f"view-{spec.id}")
            yield FilterBar()
        yield KeyBar()

    # -- views and navigation ---------------------------------------------------
    def view(self, tab: str) -> Optional[TabView]:
        try:
            # Views live here even while help or probes cover this screen.
            return self.query_one(f"#view-{tab}", TabView)
        except Exception:
            return None

    def views(self) -> List[TabView]:
        return [v for v in (self.view(spec.id) for spec in self.tab_specs) if v is not None]

    def tabs(self) -> Optional[TabbedContent]:
        try:
            return self.query_one(TabbedContent)
        except Exception:
            return None

    @property
    def active_tab(self) -> Optional[str]:
        tabs = self.tabs()
        return tabs.active if tabs is not None and tabs.active else None

    def current_view(self) -> Optional[TabView]:
        active = self.active_tab
        return self.view(active) if active else None

    def current_table(self) -> Optional[TopTable]:
        view = self.current_view()
        return view.active_table() if view is not None else None

    def activate(self, tab: str) -> None:
        """Show a tab and move the focus into it: focus left on a table of
        the hidden tab would make TabbedContent switch straight back."""
        tabs = self.tabs()
        if tabs is None:
            return
        tabs.active = tab
        view = self.view(tab)
        if view is not None:
            view.catch_up()
        table = view.active_table() if view is not None else None
        # Now, not with Widget.focus() (which defers): a deferred focus from
        # a key pressed just before would land in the tab left since.
        if self.app.screen is self:
            self.set_focus(table)

    def step_tab(self, step: int) -> None:
        active = self.active_tab
        if active is None:
            return
        ids = [s.id for s in self.tab_specs]
        self.activate(ids[(ids.index(active) + step) % len(ids)])

    def switch_table(self) -> None:
        view = self.current_view()
        if view is None:
            return
        tables = view.tables()
        if not tables:
            return
        current = view.active_table()
        index = tables.index(current) if current in tables else -1
        tables[(index + 1) % len(tables)].focus()

    # -- title line ----------------------------------------------------------------
    def refresh_title(self) -> None:
        show_text(self.query_one("#titlebar", Static), self.title_text())
