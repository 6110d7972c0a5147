"""Snapshot of the Processes tab: per-process counts of execs, exits, forks,
opens and signals, the processes that lived less than one interval, and
the latest exec, open and signal events."""

from __future__ import annotations

import errno as _errno
import signal as _signal
from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class ProcRow:
    pid: int
    ppid: int  # 0 when not known
    uid: int
    comm: str
    # Cumulative since the counts (re)started.
    execs: int
    exits: int
    forks: int
    opens: int
    open_fails: int
    sig_sent: int
    sig_recv: int
    # Everything above, this interval (the activity that sorts the table).
    new: int
    exited: bool = False


@dataclass(frozen=True)
class ExecEvent:
    seq: int
    time: float  # epoch seconds
    pid: int
    ppid: int
    uid: int
    comm: str
    filename: str
    argv: Tuple[str, ...]
    # Indices of arguments cut at the kernel's bound, and whether there were
    # more arguments than it keeps (or none were seen).
    argv_cut: Tuple[int, ...] = ()
    argv_more: bool = False
    filename_cut: bool = False


@dataclass(frozen=True)
class ExitEvent:
    seq: int
    time: float
    pid: int
    ppid: int
    uid: int
    comm: str
    code: int  # the exit status (0..255) when not killed
    signal: int  # the killing signal, 0 for a normal exit
    lifetime_s: Optional[float]  # None when the start time is not known
    argv: Tuple[str, ...] = ()  # from its exec, when one was seen


@dataclass(frozen=True)
class OpenEvent:
    seq: int
    time: float
    pid: int
    tid: int
    uid: int
    comm: str
    path: str
    flags: int
    fd: int  # -1 when it failed
    errno: int  # 0 when it succeeded
    path_cut: bool = False


@dataclass(frozen=True)
class SignalEvent:
    seq: int
    time: float
    pid: int  # the sender (the task in whose context it was generated)
    comm: str
    target: int
    sig: int
    result: str  # "delivered", "ignored", "already pending", ...


@dataclass(frozen=True)
class ProcsSnapshot:
    interval_s: float
    taken_at: float
    hook: str
    since: float  # epoch seconds when the counts (re)started
    processes: Tuple[ProcRow, ...]
    short_lived: Tuple[ExitEvent, ...]  # exited this interval, lived < one interval
    execs: Tuple[ExecEvent, ...]  # newest first, bounded
    exits: Tuple[ExitEvent, ...]
    opens: Tuple[OpenEvent, ...]
    signals: Tuple[SignalEvent, ...]
    # This interval's totals, from the kernel's counts.
    n_execs: int = 0
    n_exits: int = 0
    n_forks: int = 0
    n_opens: int = 0
    n_open_fails: int = 0
    n_signals: int = 0
    # Cumulative: what the buffer or the kernel's tables had no room for,
    # by kind ("exec", "exit", "open", "signal", "counts", "pending").
    lost: Tuple[Tuple[str, int], ...] = ()
    lost_new: int = 0
    buffer: str = "ring buffer"
    pid_filter: Tuple[int, ...] = ()
    pid_exclude: bool = False
    uid_filter: Tuple[int, ...] = ()
    uid_exclude: bool = False
    tab: str = field(default="procs", init=False)

    @property
    def lost_total(self) -> int:
        return sum(n for _, n in self.lost)


# What signal_generate's "result" means (enum trace_signal_deliver in
# include/trace/events/signal.h; stable since 3.x).
SIGNAL_RESULTS = ("delivered", "ignored", "already pending", "overflow (rt queue full)", "lost info")


def signal_result(code: int) -> str:
    return SIGNAL_RESULTS[code] if 0 <= code < len(SIGNAL_RESULTS) else f"result {code}"


def signal_name(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def errno_name(code: int) -> str:
    return "" if code == 0 else _errno.errorcode.get(code, f"E{code}")


def signal_number(name: str) -> Optional[int]:
    """``9``, ``KILL`` or ``SIGKILL`` as a signal number; None if none."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(_signal.Signals[text])
    except KeyError:
        return None
