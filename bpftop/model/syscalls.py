"""Snapshot of the Syscalls tab."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple


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
