"""What every tab's view has: a status line for its collector (compiling,
failed and why, running on which hook), and a place for the latest snapshot."""

from __future__ import annotations

from typing import Any, List, Optional

from textual.containers import Vertical
from textual.widgets import Static

from ..model import CollectorState, CollectorStatus
from ..widgets.top_table import TopTable


def status_text(status: Optional[CollectorStatus]) -> str:
    if status is None or status.state is CollectorState.STOPPED:
        return "not started"
    if status.state is CollectorState.STARTING:
        return "compiling and attaching BPF programs..."
    if status.state is CollectorState.FAILED:
        lines = [f"[b]collector failed:[/b] {status.message}"]
        for a in status.attempts:
            lines.append(f"  {a.strategy} ({a.kind.value}: {', '.join(a.hooks)}): {a.reason}")
        return "\n".join(lines)
    if status.state is CollectorState.ERROR:
        return f"[b]read error:[/b] {status.message}"
    chosen = status.chosen
    return f"running on {chosen.strategy} ({chosen.kind.value})" if chosen else "running"


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

    tab: str = ""
    title: str = ""
    # Shown in help under the tab's title, with the view's own BINDINGS.
    HELP: str = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status: Optional[CollectorStatus] = None
        self.snapshot: Any = None

    def on_mount(self) -> None:
        status = getattr(self.app, "statuses", {}).get(self.tab)
        if status is not None:
            self.set_status(status)

    def status_widget(self) -> Static:
        return Static("waiting for the collector...", classes="tab-status")

    def set_status(self, status: CollectorStatus) -> None:
        self.status = status
        widget = self.query_one(".tab-status", Static)
        widget.update(status_text(status))
        widget.set_class(status.state is CollectorState.FAILED, "-failed")

    def show_snapshot(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.render_snapshot(snapshot)

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
