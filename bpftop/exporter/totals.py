"""Counters that only go up, folded from the tabs' interval snapshots.

A snapshot holds one interval's counts (syscalls, disk, cache) or counts
since its collector's counts (re)started (TCP's ``since``). The exporter
adds each interval's share to totals that live as long as the exporter, so
a collector switched off and on, or restarted after a failure, never sends
a counter backwards. Plain Python: no BCC, no prometheus_client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..model.cache import CacheSnapshot, cache_stats
from ..model.disk import NSLOTS, DiskSnapshot
from ..model.syscalls import SyscallsSnapshot
from ..model.tcp import TcpSnapshot
from ..safetext import safe

# Per-process series kept in memory while they compete for the top N: a
# bound on memory with process churn, well above any sensible N.
PROCESS_POOL = 4096


@dataclass
class Hist:
    """A log2 microsecond histogram (model/disk.py's slots) and its sum."""

    slots: List[int] = field(default_factory=lambda: [0] * NSLOTS)
    sum_ns: int = 0

    def add(self, slots: Sequence[int], sum_ns: int) -> None:
        for i, n in enumerate(slots[:NSLOTS]):
            self.slots[i] += n
        self.sum_ns += sum_ns

    @property
    def count(self) -> int:
        return sum(self.slots)


@dataclass
class DiskOpTotals:
    ios: int = 0
    bytes: int = 0
    hist: Hist = field(default_factory=Hist)


@dataclass
class ProcessTotals:
    comm: str
    syscalls: int = 0
    connects: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def activity(self) -> int:
        return self.syscalls + self.connects + self.cache_hits + self.cache_misses


def _bump(counts: Dict[Any, int], key: Any, n: int) -> None:
    if n > 0:
        counts[key] = counts.get(key, 0) + n


class Totals:
    """Every exported counter, by its labels. Not thread-safe: the exporter
    folds and copies under its own lock."""

    def __init__(self, per_process: bool = False) -> None:
        self.per_process = per_process
        self.syscalls: Dict[str, int] = {}
        self.syscall_errors: Dict[str, int] = {}
        self.syscall_seconds: Dict[str, float] = {}  # only while latency is measured
        self.disk: Dict[Tuple[str, str], DiskOpTotals] = {}
        self.disk_lost = 0
        self.tcp_attempts: Dict[int, int] = {}  # family -> attempts
        self.tcp_outcomes: Dict[Tuple[int, str], int] = {}  # (family, result)
        self.tcp_latency = Hist()
        self.tcp_destinations: Dict[Tuple[int, str, int], int] = {}  # (family, daddr, dport) -> attempts
        self.tcp_lost = 0
        self.cache: Dict[str, int] = {"hits": 0, "misses": 0, "dirties": 0}
        self.cache_read_hit_ratio: Optional[float] = None  # the latest interval's
        self.processes: Dict[int, ProcessTotals] = {}
        self.taken_at: Dict[str, float] = {}  # tab -> epoch seconds of its latest snapshot
        # TCP counts since its collector's ``since``: the previous reading,
        # so each interval adds only what is new.
        self._tcp_since: Optional[float] = None
        self._tcp_prev_fam: Dict[int, int] = {}
        self._tcp_prev_out: Dict[Tuple[int, str], int] = {}
        self._tcp_prev_hist: Tuple[int, ...] = ()
        self._tcp_prev_sum = 0

    def fold(self, tab: str, snap: Any) -> None:
        if isinstance(snap, SyscallsSnapshot):
            self._syscalls(snap)
        elif isinstance(snap, DiskSnapshot):
            self._disk(snap)
        elif isinstance(snap, TcpSnapshot):
            self._tcp(snap)
        elif isinstance(snap, CacheSnapshot):
            self._cache(snap)
        taken = getattr(snap, "taken_at", None)
        if isinstance(taken, float):
            self.taken_at[tab] = taken

    def _process(self, pid: int, comm: str) -> Optional[ProcessTotals]:
        if not self.per_process:
            return None
        proc = self.processes.get(pid)
        if proc is None:
            if len(self.processes) >= PROCESS_POOL:
                quietest = min(self.processes, key=lambda p: self.processes[p].activity)
                del self.processes[quietest]
            proc = self.processes[pid] = ProcessTotals(safe(comm))
        proc.comm = safe(comm)
        return proc

    def _syscalls(self, snap: SyscallsSnapshot) -> None:
        for row in snap.rows:
            _bump(self.syscalls, row.syscall, row.count)
            _bump(self.syscall_errors, row.syscall, row.errors)
            if row.total_ns is not None:
                self.syscall_seconds[row.syscall] = self.syscall_seconds.get(row.syscall, 0.0) + row.total_ns / 1e9
        for prow in snap.processes:
            proc = self._process(prow.pid, prow.comm)
            if proc is not None:
                proc.syscalls += max(0, prow.count)

    def _disk(self, snap: DiskSnapshot) -> None:
        for row in snap.rows:
            for op in row.ops:
                t = self.disk.setdefault((safe(row.disk), op.op), DiskOpTotals())
                t.ios += max(0, op.ios)
                t.bytes += max(0, op.bytes)
                t.hist.add(op.hist, op.total_ns)
        self.disk_lost += max(0, snap.lost or 0)

    def _tcp(self, snap: TcpSnapshot) -> None:
        if snap.since != self._tcp_since:
            # The collector's counts started again (filters changed, or it
            # was restarted): everything it holds is new to us.
            self._tcp_since = snap.since
            self._tcp_prev_fam, self._tcp_prev_out = {}, {}
            self._tcp_prev_hist, self._tcp_prev_sum = (), 0
        fam = {f.family: f.count for f in snap.families}
        for family, count in fam.items():
            _bump(self.tcp_attempts, family, count - self._tcp_prev_fam.get(family, 0))
        out = {(o.family, o.result): o.count for o in snap.outcome_counts}
        for key, count in out.items():
            _bump(self.tcp_outcomes, key, count - self._tcp_prev_out.get(key, 0))
        prev = self._tcp_prev_hist or (0,) * len(snap.latency_hist)
        self.tcp_latency.add([a - b for a, b in zip(snap.latency_hist, prev)], snap.latency_sum_ns - self._tcp_prev_sum)
        self._tcp_prev_fam, self._tcp_prev_out = fam, out
        self._tcp_prev_hist, self._tcp_prev_sum = snap.latency_hist, snap.latency_sum_ns
        for dest in snap.destinations:
            _bump(self.tcp_destinations, (dest.family, dest.daddr, dest.dport), dest.new)
        self.tcp_lost += max(0, snap.lost_new)
        for prow in snap.processes:
            proc = self._process(prow.pid, prow.comm)
            if proc is not None:
                proc.connects += max(0, prow.new)

    def _cache(self, snap: CacheSnapshot) -> None:
        stats = snap.system
        self.cache["hits"] += stats.hits
        self.cache["misses"] += stats.misses
        self.cache["dirties"] += stats.dirties
        self.cache_read_hit_ratio = None if stats.read_hit_pct is None else stats.read_hit_pct / 100
        for row in snap.rows:
            proc = self._process(row.pid, row.comm)
            if proc is not None:
                s = cache_stats(row.counts)
                proc.cache_hits += s.hits
                proc.cache_misses += s.misses

    def top_destinations(self, n: int) -> List[Tuple[Tuple[int, str, int], int]]:
        return sorted(self.tcp_destinations.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def top_processes(self, n: int) -> List[Tuple[int, ProcessTotals]]:
        return sorted(self.processes.items(), key=lambda kv: (-kv[1].activity, kv[0]))[:n]

