"""Snapshot dataclasses: what collectors hand over and every view renders.

The TUI, the plain-text output (``--once``), ``--json`` and later recordings
all render from these, so what is on screen and what is dumped cannot
disagree. Nothing here knows about BCC or Textual.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Tuple


class HookKind(str, enum.Enum):
    RAW_TRACEPOINT = "raw_tracepoint"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"
    FENTRY = "fentry"


class CollectorState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # no rung of the ladder worked; see attempts
    ERROR = "error"  # was running, a read failed; the runner retries
    STOPPED = "stopped"


@dataclass(frozen=True)
class HookAttempt:
    """One rung of a collector's hook ladder and how it went."""

    strategy: str
    kind: HookKind
    hooks: Tuple[str, ...]
    ok: Optional[bool]  # None: not tried, a higher rung was chosen
    reason: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class CollectorStatus:
    tab: str
    state: CollectorState
    attempts: Tuple[HookAttempt, ...] = ()
    message: str = ""

    @property
    def chosen(self) -> Optional[HookAttempt]:
        for attempt in self.attempts:
            if attempt.ok:
                return attempt
        return None


@dataclass(frozen=True)
class SyscallRow:
    syscall: str
    nr: int
    count: int
    errors: int
    total_ns: Optional[int]  # None when latency is not being measured
    timed: int = 0  # calls whose entry was seen, the base of avg_ns

    @property
    def avg_ns(self) -> Optional[float]:
        if self.total_ns is None or self.timed == 0:
            return None
        return self.total_ns / self.timed


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    comm: str
    count: int


@dataclass(frozen=True)
class SyscallsSnapshot:
    interval_s: float
    taken_at: float  # epoch seconds at the end of the interval
    rows: Tuple[SyscallRow, ...]
    processes: Tuple[ProcessRow, ...]
    latency: bool
    pid_filter: Tuple[int, ...] = ()
    pid_exclude: bool = False  # pid_filter lists the processes left out
    hook: str = ""
    # Calls the kernel could not attribute to a process because its
    # per-process map was full; they still count in ``rows``.
    untracked_calls: int = 0
    tab: str = field(default="syscalls", init=False)

    @property
    def total_count(self) -> int:
        return sum(r.count for r in self.rows)

    @property
    def total_errors(self) -> int:
        return sum(r.errors for r in self.rows)
