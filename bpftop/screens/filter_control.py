"""The filter bar and pinning, between the operator and FilterState: open
the bar on the tab shown, apply what is typed (kernel-side terms on Enter
only), show each tab's filter in its view. FilterState decides; this only
asks it and shows the answer."""

from __future__ import annotations

from typing import Callable, Sequence

from ..console_filters import FilterState
from ..filters import Filter, FilterError
from ..tabs import TabSpec
from ..widgets.filter_bar import FilterBar
from .main import MainScreen


class FilterControl:
    def __init__(self, state: FilterState, screen: MainScreen, specs: Sequence[TabSpec],
                 notify: Callable[..., None]) -> None:
        self.state = state
        self.screen = screen
        self.specs = list(specs)
        self.notify = notify

    def show(self, tab: str) -> None:
        view = self.screen.view(tab)
        if view is None:
            return
        state = self.state
        view.apply_filter(state.effective(tab), pinned=state.pinned, ignored=state.ignored(tab))

    def show_all(self) -> None:
        for spec in self.specs:
            self.show(spec.id)

    def open(self) -> None:
        tab = self.screen.active_tab
        if tab is None or self.screen.app.screen is not self.screen:
            return
        title = next(s.title for s in self.specs if s.id == tab)
        self.screen.query_one(FilterBar).open(self.state.own.get(tab, Filter()).text, title)

    def edited(self, message: FilterBar.Edited) -> None:
        tab = self.screen.active_tab
        if tab is None:
            return
        bar = self.screen.query_one(FilterBar)
        try:
            if not message.final and self.state.needs_collector(tab, message.text):
                # Kernel-side terms change on Enter only: typing pid=1234
                # should not re-filter the kernel at 1, 12 and 123 first.
                bar.show_error("")
                bar.show_hint("Enter applies it (its pid/port/disk terms go to the kernel)")
                return
            self.state.set(tab, message.text)
        except FilterError as e:
            bar.show_error(f"not applied: {e}")
            return
        bar.show_error("")
        self.show(tab)
        if message.final:
            bar.action_close()

    def closed(self) -> None:
        table = self.screen.current_table()
        if table is not None:
            table.focus()

    def toggle_pin(self) -> None:
        tab = self.screen.active_tab
        if tab is None:
            return
        try:
            note = self.state.toggle_pin(tab, [spec.id for spec in self.specs])
        except FilterError as e:
            self.notify(f"filter not pinned: {e}", severity="error", timeout=5)
            return
        if note is None:
            self.notify("no filter on this tab to pin (/ sets one)", severity="warning", timeout=3)
            return
        self.show_all()
        self.notify(note, timeout=3)
