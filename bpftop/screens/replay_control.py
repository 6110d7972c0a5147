"""Playing a recording in the console: the clock, stepping, jumping to a
time and the speed. The views show what the Replay says is current."""

from __future__ import annotations

import time
from typing import Callable

from ..errors import BpftopError
from ..model.history import History
from ..recording.replay import Replay
from .goto import GotoScreen
from .main import MainScreen


class ReplayControl:
    def __init__(self, replay: Replay, screen: MainScreen, history: History, notify: Callable[..., None]) -> None:
        self.replay = replay
        self.history = history  # the graphs' series, rebuilt on every move
        self.screen = screen
        self.notify = notify
        self._clock = time.monotonic()

    def start(self) -> None:
        self._clock = time.monotonic()
        self.screen.app.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._clock = now - self._clock, now
        if self.replay.advance(elapsed):
            self.show_position()

    def show_position(self) -> None:
        self.replay.bring_history(self.history)
        for tab, snapshot in self.replay.snapshots().items():
            view = self.screen.view(tab)
            if view is not None:
                view.show_snapshot(snapshot)
        self.screen.refresh_title()

    def set_paused(self, paused: bool) -> None:
        self.replay.playing = not paused
        self._clock = time.monotonic()

    def step(self, n: int) -> None:
        self.replay.playing = False
        if not self.replay.step(n):
            self.notify("at the " + ("end" if n > 0 else "start") + " of the recording", timeout=2)
        self.show_position()

    def next_speed(self) -> None:
        speed = self.replay.next_speed()
        self.notify(f"replay at {speed:g}x", timeout=2)
        self.screen.refresh_title()

    def ask_time(self) -> None:
        def go(text: str | None) -> None:
            if not text:
                return
            try:
                self.replay.seek(self.replay.parse_time(text))
            except BpftopError as e:
                self.notify(str(e), severity="error", timeout=6)
                return
            self.show_position()

        self.screen.app.push_screen(GotoScreen(self.replay.describe()), go)
