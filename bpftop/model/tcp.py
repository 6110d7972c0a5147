"""Snapshot of the TCP tab: outgoing connects as events and as aggregates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .history import TabHistory

# Outcome of one connect attempt.
PENDING = "pending"  # still in SYN_SENT when the snapshot was taken
ESTABLISHED = "established"
REFUSED = "refused"  # a reset arrived in SYN_SENT
FAILED = "failed"  # closed before established: timeout, unreachable, aborted
UNKNOWN = "-"  # the hook does not see outcomes (kprobe rung)
FAILURES = (REFUSED, FAILED)


@dataclass(frozen=True)
class ConnectEvent:
    seq: int  # order of arrival, unique while the collector runs
    time: float  # epoch seconds of the attempt
    pid: int
    uid: int
    comm: str
    family: int  # 4 or 6
    saddr: str  # compressed text form (ipaddress)
    sport: int  # 0 until the outcome is known (chosen after SYN_SENT)
    daddr: str
    dport: int
    result: str = PENDING
    latency_us: Optional[float] = None  # to ESTABLISHED, or to the failure


@dataclass(frozen=True)
class DestinationRow:
    daddr: str
    dport: int
    family: int
    count: int  # attempts since counting began
    new: int  # attempts in this interval
    failures: int
    established: int
    # Time from the attempt to its outcome (established, refused or timed
    # out), over the ``timed`` connects whose outcome carries it.
    avg_latency_us: Optional[float]
    pids: Tuple[int, ...]  # the first MAX_DEST_PIDS seen since counting began
    comms: Tuple[str, ...]
    pids_dropped: int = 0  # connects from further pids, counted but not listed
    timed: int = 0

    @property
    def endpoint(self) -> str:
        return endpoint(self.daddr, self.dport, self.family)


@dataclass(frozen=True)
class TcpProcessRow:
    pid: int
    comm: str
    uid: int
    count: int
    new: int
    failures: int
    established: int
    avg_latency_us: Optional[float]  # as DestinationRow's
    timed: int = 0


@dataclass(frozen=True)
class FamilyCount:
    family: int  # 4 or 6
    count: int
    failures: int


@dataclass(frozen=True)
class OutcomeCount:
    """Connect attempts of one IP version that ended one way, since the
    counts (re)started."""

    family: int  # 4 or 6
    result: str  # ESTABLISHED, REFUSED or FAILED
    count: int


def endpoint(addr: str, port: int, family: int) -> str:
    return f"[{addr}]:{port}" if family == 6 else f"{addr}:{port}"


@dataclass(frozen=True)
class TcpSnapshot:
    interval_s: float
    taken_at: float
    hook: str
    since: float  # epoch seconds when the counts (re)started
    destinations: Tuple[DestinationRow, ...]
    processes: Tuple[TcpProcessRow, ...]
    events: Tuple[ConnectEvent, ...]  # newest first, bounded
    connects: int  # attempts in this interval
    failures: int  # failed outcomes in this interval
    total_connects: int
    total_failures: int
    families: Tuple[FamilyCount, ...]  # cumulative, per IP version
    rate_history: Tuple[float, ...]  # attempts per second, oldest first
    lost_connects: int  # cumulative: attempts the buffer had no room for
    lost_results: int  # cumulative: outcomes the buffer had no room for
    lost_new: int  # both kinds, this interval
    buffer: str = "ring buffer"
    outcomes: bool = True  # the hook sees established / failed and latency
    # Outcomes whose attempt was counted before the counts restarted.
    orphan_results: int = 0
    # Attempts in the totals, outcomes and latency but in no row: past the
    # kernel's table of (process, destination) keys (with a comm or address
    # filter on, in no total either: they cannot be told apart), or of
    # exited processes past the collector's limit of such rows.
    overflow_destinations: int = 0
    pid_filter: Tuple[int, ...] = ()
    pid_exclude: bool = False
    port_filter: Tuple[int, ...] = ()
    port_exclude: bool = False
    match_filter: str = ""  # Python-side comm / address filter, as text
    # Since ``since``: outcomes per IP version, and the time to each outcome
    # that carries one as log2 microsecond slots (model/disk.py's) and its
    # sum, so that an exporter can keep counters across intervals.
    outcome_counts: Tuple[OutcomeCount, ...] = ()
    latency_hist: Tuple[int, ...] = ()
    latency_sum_ns: int = 0
    # The event log is a sample: the kernel counts every attempt in the
    # aggregates above but sends only a few hundred events a second. Since
    # ``since``: attempts sent as events that reached the log (past its
    # filter), and attempts the rate limit did not send (not losses: the
    # buffer had room; ``lost_*`` count what it had no room for).
    streamed: int = 0
    not_streamed: int = 0
    tab: str = field(default="tcp", init=False)

    @property
    def lost_total(self) -> int:
        return self.lost_connects + self.lost_results


def graph(history: TabHistory, snap: TcpSnapshot) -> None:
    """Connects per second. The collector keeps one rate per interval; the
    times are placed an interval apart back from this snapshot's (the
    values are exact)."""
    rates = snap.rate_history
    step = snap.interval_s or 1.0
    n = len(rates)
    history.series("connects_per_s").replace(
        (snap.taken_at - (n - 1 - i) * step, rate) for i, rate in enumerate(rates)
    )
