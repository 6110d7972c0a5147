"""Replaying a recording: a timeline of ticks (one snapshot per tab per
interval), a position on it, and a play speed. Plain Python: the TUI drives
it with a timer, ``--replay --once`` asks it for one tick."""

from __future__ import annotations

import bisect
import datetime
import re
import time
from typing import Any, Dict, List, Optional, Sequence

from ..bpf.ladder import Strategy
from ..collectors.base import Collector
from ..errors import BpftopError
from ..model import CollectorState, CollectorStatus, HookAttempt, HookKind
from ..model.history import History
from .file import Frame, Recording

SPEEDS = (1.0, 4.0, 16.0)


class ReplayError(BpftopError):
    exit_code = 2


def ticks_of(frames: Sequence[Frame]) -> List[Dict[str, Frame]]:
    """Group frames into ticks: a tick ends when a tab comes round again.
    Each tick holds, per tab, that tab's latest snapshot so far."""
    ticks: List[Dict[str, Frame]] = []
    current: Dict[str, Frame] = {}
    latest: Dict[str, Frame] = {}
    for frame in sorted(frames, key=lambda f: f.t):
        if frame.tab in current:
            ticks.append(dict(latest))
            current = {}
        current[frame.tab] = frame
        latest[frame.tab] = frame
    if current:
        ticks.append(dict(latest))
    return ticks


class Replay:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.ticks = ticks_of(recording.frames)
        self.frames = sorted(recording.frames, key=lambda f: f.t)
        self._times = [f.t for f in self.frames]
        if not self.ticks:
            why = f": {recording.problem}" if recording.problem else ""
            raise ReplayError(f"{recording.path} holds no snapshots{why}")
        self.position = 0
        self.speed = SPEEDS[0]
        self.playing = True
        self._carry = 0.0

    @property
    def tabs(self) -> List[str]:
        return self.recording.tabs

    def time_at(self, position: int) -> float:
        return max(f.t for f in self.ticks[position].values())

    @property
    def now(self) -> float:
        return self.time_at(self.position)

    def snapshots(self, position: Optional[int] = None) -> Dict[str, Any]:
        tick = self.ticks[self.position if position is None else position]
        return {tab: frame.snapshot for tab, frame in tick.items()}

    def bring_history(self, history: History) -> None:
        """Bring the graphs' history to this position: on from where it was
        when the replay moved forward (every frame passed is fed, also when
        playing fast skips ticks), rebuilt from the start after a move back,
        so that it holds the frames up to the position and nothing later."""
        now = self.now
        if history.until is None or now < history.until:
            history.clear()
            first = 0
        else:
            first = bisect.bisect_right(self._times, history.until)
        for frame in self.frames[first:bisect.bisect_right(self._times, now)]:
            history.feed(frame.tab, frame.snapshot)
        history.until = now

    def step(self, n: int) -> bool:
        """Move n ticks (negative: back); True when the position changed."""
        new = min(len(self.ticks) - 1, max(0, self.position + n))
        changed = new != self.position
        self.position = new
        self._carry = 0.0
        return changed

    def seek(self, when: float) -> None:
        """The last tick at or before ``when`` (the first if none is)."""
        best = 0
        for i in range(len(self.ticks)):
            if self.time_at(i) <= when + 1e-6:
                best = i
        self.position, self._carry = best, 0.0

    def advance(self, wall_seconds: float) -> bool:
        """Play on for ``wall_seconds`` of real time at the current speed."""
        if not self.playing or self.position >= len(self.ticks) - 1:
            return False
        self._carry += wall_seconds * self.speed
        moved = False
        while self.position < len(self.ticks) - 1:
            gap = max(0.05, self.time_at(self.position + 1) - self.time_at(self.position))
            if self._carry < gap:
                break
            self._carry -= gap
            self.position += 1
            moved = True
        return moved

    def next_speed(self) -> float:
        self.speed = SPEEDS[(SPEEDS.index(self.speed) + 1) % len(SPEEDS)] if self.speed in SPEEDS else SPEEDS[0]
        return self.speed

    def parse_time(self, text: str) -> float:
        """+SECONDS from the start, HH:MM[:SS] on the recording's first day
        (local time), or an ISO date and time."""
        text = text.strip()
        start = self.time_at(0)
        if re.fullmatch(r"\+\d+(\.\d+)?", text):
            return start + float(text[1:])
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
        if m:
            day = datetime.datetime.fromtimestamp(start)
            hh, mm, ss = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
            if hh > 23 or mm > 59 or ss > 59:
                raise ReplayError(f"{text!r} is not a time of day")
            when = day.replace(hour=hh, minute=mm, second=ss, microsecond=0).timestamp()
            return when
        try:
            return datetime.datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise ReplayError(
                f"{text!r} is not a time: use +SECONDS from the start, HH:MM[:SS], or YYYY-MM-DDTHH:MM:SS"
            ) from None

    def describe(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.now))
        state = "playing" if self.playing else "paused"
        return f"{stamp}  {self.position + 1}/{len(self.ticks)}  {self.speed:g}x {state}"


class RecordedTab(Collector):
    """Stands in for a collector during replay: no BPF; its status says
    which hook the recording was made with."""

    def __init__(self, tab: str, title: str, hook: str) -> None:
        self.tab = tab  # type: ignore[misc]
        self.title = title  # type: ignore[misc]
        super().__init__()
        attempt = HookAttempt(hook or "unknown hook", HookKind.TRACEPOINT, (), True)
        self.set_status(CollectorState.REPLAY, f"recorded on {hook or 'an unknown hook'}", (attempt,))

    def strategies(self) -> List[Strategy]:
        return []

    def start(self) -> CollectorStatus:
        return self.status

    def _read(self) -> Any:
        raise RuntimeError("a recorded tab is not collected")

    def stop(self) -> None:
        pass
