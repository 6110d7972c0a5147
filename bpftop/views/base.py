"""What every tab's view has: a status line for its collector (compiling,
failed and why, running on which hook), and a place for the latest snapshot."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from rich.text import Text
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import Static

from ..filters import NO_FILTER, Filter
from ..model import CollectorState, CollectorStatus
from ..model.history import History, TabHistory
from ..widgets.plain import plain, show_text, styled
from ..widgets.top_table import TopTable


def status_text(status: Optional[CollectorStatus]) -> Text:
    if status is None or status.state is CollectorState.STOPPED:
        return plain("not started")
    if status.state is CollectorState.STARTING:
        return plain("compiling and attaching BPF programs...")
    if status.state is CollectorState.FAILED:
        out = styled(("collector failed:", "bold"), f" {status.message}")
        for a in status.attempts:
            out.append("\n")
            out.append_text(plain(f"  {a.strategy} ({a.kind.value}: {', '.join(a.hooks)}): {a.reason}"))
        return out
    if status.state is CollectorState.REPLAY:
        return styled(("replay", "bold"), f", {status.message}")
    if status.state is CollectorState.DISABLED:
        return styled(("paused by the operator:", "bold"),
                      " programs detached (P opens the probes screen to switch it on)")
    if status.state is CollectorState.ERROR:
        return styled(("read error:", "bold"), f" {status.message}")
    chosen = status.chosen
    return plain(f"running on {chosen.strategy} ({chosen.kind.value})" if chosen else "running")


class TabView(Vertical):
    DEFAULT_CSS = """
    TabView {
        height: 1fr;
    }
    TabView > .tab-status {
        height: auto;
        color: $text-muted;
    }
    TabView > .tab-status.-failed {
        color: $error;
    }
    TabView > .tab-summary {
        height: 1;
    }
    """

    def __init__(self, *, tab: str, title: str, fields: Sequence[str] = (), **kwargs: Any) -> None:
        """``tab``, ``title`` and ``fields`` (what the filter can name before
        the first snapshot shows columns) come from the tab's registry entry."""
        super().__init__(**kwargs)
        self.tab = tab
        self.title = title
        self.fields = tuple(fields)
        self.status: Optional[CollectorStatus] = None
        self.snapshot: Any = None
        self._behind = False
        self.row_filter = Filter()
        self.filter_note = Text()

    @property
    def history(self) -> TabHistory:
        """This tab's part of the app's graph history (one per app): views
        render their graphs from it and never keep points of their own."""
        history = getattr(self.app, "history", None)
        if not isinstance(history, History):
            history = self.__dict__.setdefault("_own_history", History())  # an app without one (tests)
        return history.of(self.tab)

    def on_mount(self) -> None:
        status = getattr(self.app, "statuses", {}).get(self.tab)
        if status is not None:
            self.set_status(status)
        if self.snapshot is not None:
            self.render_snapshot(self.snapshot)

    def status_widget(self) -> Static:
        return Static("waiting for the collector...", classes="tab-status")

    def set_status(self, status: CollectorStatus) -> None:
        self.status = status
        self._update_status_line()

    def describe_status(self, status: CollectorStatus) -> Text:
        return status_text(status)

    def _update_status_line(self) -> None:
        try:
            widget = self.query_one(".tab-status", Static)
        except NoMatches:
            # A status or filter can arrive between this view's mount and
            # its children's (a loaded machine): shown once they are there.
            if self.is_attached:
                self.call_after_refresh(self._update_status_line)
            return
        text = self.describe_status(self.status) if self.status is not None else plain("waiting for the collector...")
        if self.filter_note:
            text = Text.assemble(text, "   ", self.filter_note)
        show_text(widget, text)
        widget.set_class(self.status is not None and self.status.state is CollectorState.FAILED, "-failed")

    # -- filtering ------------------------------------------------------------
    def filter_fields(self) -> List[str]:
        """Fields the filter can name on this tab: every column of its tables."""
        fields = set(self.fields)
        for table in self.tables():
            if table.model is not None:
                fields.update(c.key for c in table.model.columns)
        return sorted(fields)

    def apply_filter(self, row_filter: Filter, pinned: Filter = NO_FILTER, ignored: Sequence[str] = ()) -> None:
        """Narrow the tab to ``row_filter`` (kernel-side terms are already in
        force) and show it in the status line."""
        self.row_filter = row_filter
        note = Text()
        if row_filter:
            pinned_mark = " (pinned)" if any(t in row_filter.terms for t in pinned.terms) else ""
            note.append_text(styled(("filter:", "bold"), f" {row_filter.text}{pinned_mark}"))
        if ignored:
            if note:
                note.append("  ")
            note.append_text(plain(f"(pinned, no such field here: {' '.join(ignored)})"))
        self.filter_note = note
        for table in self.tables():
            table.set_filter(row_filter)
        self._update_status_line()

    def show_snapshot(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        if not self.is_mounted:
            return  # on_mount shows it: the first snapshot can beat the compose
        if not self._visible():
            # A hidden tab's tables are not redrawn every interval (most of
            # an idle console's cost): the latest snapshot is drawn when the
            # tab is shown.
            self._behind = True
            return
        self._draw_latest()

    def catch_up(self) -> None:
        """Draw the latest snapshot if it arrived while the tab was hidden."""
        if self._behind and self.snapshot is not None and self.is_mounted:
            self._draw_latest()

    def on_show(self) -> None:
        self.catch_up()

    def _draw_latest(self) -> None:
        self._behind = False
        try:
            self.render_snapshot(self.snapshot)
        except NoMatches:
            pass  # children not composed yet; the next snapshot shows

    def _visible(self) -> bool:
        node: Any = self
        while node is not None and node is not self.screen:
            if not node.display:
                return False
            node = node.parent
        return True


    def render_snapshot(self, snapshot: Any) -> None:
        raise NotImplementedError

    def tables(self) -> List[TopTable]:
        return list(self.query(TopTable))

    def active_table(self) -> Optional[TopTable]:
        tables = self.tables()
        for table in tables:
            if table.has_focus:
                return table
        return tables[0] if tables else None
