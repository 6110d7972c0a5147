"""The main screen: a title bar, one tab per collector, the key footer."""

from __future__ import annotations

import os
import platform
import socket
from typing import Dict, Sequence, Type

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from ..tabs import TabSpec
from ..views.base import TabView
from ..widgets.filter_bar import FilterBar
from ..widgets.plain import styled


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


class MainScreen(Screen):

    def __init__(self, tabs: Sequence[TabSpec], views: Dict[str, Type[TabView]], initial: str) -> None:
        super().__init__()
        self.tab_specs = list(tabs)
        self.view_types = views
        self.initial = initial

    def compose(self) -> ComposeResult:
        yield Static(self.title_text(), id="titlebar")
        with Vertical(id="body"):
            with Tabs(initial=self.initial, id="tabs"):
                for i, spec in enumerate(self.tab_specs, start=1):
                    with TabPane(f"{i} {spec.title}", id=spec.id):
                        yield self.view_types[spec.id](id=f"view-{spec.id}")
            yield FilterBar()
        yield Footer()

    def title_text(self) -> Text:
        interval = getattr(self.app, "interval", 1.0)
        state = [("  "), (" PAUSED ", "reverse")] if getattr(self.app, "paused", False) else []
        replay = getattr(self.app, "replay", None)
        if replay is not None:
            # The host and kernel come from the recording's header: any text.
            head = replay.recording.header
            return styled(
                ("bpftop", "bold"), " ", (" REPLAY ", "reverse"), f" {os.path.basename(replay.recording.path)}",
                f"  {head.get('host', '?')}  Linux {head.get('kernel', '?')}  {replay.describe()}",
            )
        return styled(
            ("bpftop", "bold"), f"  {socket.gethostname()}  Linux {platform.release()}  interval {interval:g}s",
            *state, *self._recording_mark(),
        )

    def _recording_mark(self) -> list:
        """While recording, a REC mark; once a recording stops, why, until
        bpftop exits (a toast alone is missed)."""
        recording = getattr(self.app, "recording_state", None)
        if recording is None:
            return []
        if recording.failed:
            return ["  ", (f" RECORDING STOPPED: {recording.failed} ", "reverse bold red")]
        return ["  ", (" REC ", "reverse red"), f" {os.path.basename(recording.path)}"]

    def refresh_title(self) -> None:
        self.query_one("#titlebar", Static).update(self.title_text())
