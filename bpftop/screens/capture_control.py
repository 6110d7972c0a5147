"""Saving what the operator sees (s: the screen; S: every tab, one file),
each with a header line that says what produced it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, Sequence

from .. import captures
from ..tabs import TabSpec
from .main import MainScreen
from .textual_internals import screen_text


class CaptureControl:
    def __init__(self, screen: MainScreen, specs: Sequence[TabSpec], directory: Path,
                 header: Callable[[Sequence[str]], str], notify: Callable[..., None]) -> None:
        self.screen = screen
        self.specs = list(specs)
        self.directory = directory
        self.header = header  # the header line for these tabs
        self.notify = notify

    def _save(self, stem: str, tabs: Sequence[str], body: str) -> None:
        try:
            path = captures.save(self.directory, stem, self.header(tabs) + "\n" + body)
        except OSError as e:  # CaptureError says where and why; anything else too
            self.notify(f"snapshot not saved: {e}", severity="error", timeout=6)
            return
        self.notify(f"saved {path}", timeout=5)

    def save_screen(self) -> None:
        app = self.screen.app
        on_main = app.screen is self.screen
        tab = (self.screen.active_tab or "screen") if on_main else "screen"
        self._save(f"bpftop-{tab}", [tab], screen_text(app))

    async def save_every_tab(self) -> None:
        app = self.screen.app
        start = self.screen.active_tab
        if start is None or app.screen is not self.screen:
            return
        pages = []
        for spec in self.specs:
            self.screen.activate(spec.id)
            await self._settle()
            pages.append(screen_text(app))
        self.screen.activate(start)
        self._save("bpftop-all", [s.id for s in self.specs], "\n".join(pages))

    async def _settle(self) -> None:
        """Let a tab switch reach the screen before it is captured."""
        for _ in range(3):
            event = asyncio.Event()
            self.screen.app.call_after_refresh(event.set)
            await event.wait()
