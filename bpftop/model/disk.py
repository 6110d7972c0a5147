"""Snapshot of the Disk tab, and the arithmetic of log2 latency histograms.

Latency histograms have log2 buckets in microseconds: slot 0 holds
[0, 1) us, slot k >= 1 holds [2^(k-1), 2^k) us. Percentiles are estimated
from them (see ``percentile``); the mean is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional, Sequence, Tuple

from .history import TabHistory

OPS: Tuple[str, ...] = ("read", "write", "flush", "discard", "other")
NSLOTS = 32  # up to 2^31 us (35 minutes): anything slower lands in the last


def slot_low_us(slot: int) -> int:
    """Smallest latency (us) that lands in ``slot``."""
    return 0 if slot == 0 else 1 << (slot - 1)


def slot_high_us(slot: int) -> int:
    """First latency (us) past ``slot``: the slot holds [low, high)."""
    return 1 << slot


def slot_of_us(us: float) -> int:
    """The slot a latency in microseconds lands in (as the kernel files it)."""
    whole = int(us)
    if whole <= 0:
        return 0
    return min(whole.bit_length(), NSLOTS - 1)


def add_hists(hists: Iterable[Sequence[int]]) -> Tuple[int, ...]:
    total = [0] * NSLOTS
    for h in hists:
        for i, n in enumerate(h):
            total[i] += n
    return tuple(total)


def percentile(hist: Sequence[int], q: float, max_us: Optional[float] = None) -> Optional[float]:
    """The ``q`` quantile (0..1) in microseconds, estimated from log2 buckets.

    The bucket that holds the quantile is exact; inside it the value is
    interpolated linearly, so the estimate can be off by up to the bucket's
    width (the true value lies in [low, 2*low)). With ``max_us`` (the true
    largest latency) the estimate never exceeds it. None without samples.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0..1, not {q}")
    total = sum(hist)
    if total == 0:
        return None
    target = q * total
    seen = 0
    for slot, n in enumerate(hist):
        if n == 0:
            continue
        if seen + n >= target:
            low, high = float(slot_low_us(slot)), float(slot_high_us(slot))
            if max_us is not None and low <= max_us < high:
                high = max_us
            value = low + (high - low) * max(0.0, target - seen) / n
            return value if max_us is None else min(value, max_us)
        seen += n
    return max_us  # not reached: the loop ends at the last non-empty slot


@dataclass(frozen=True)
class OpStats:
    """One operation on one disk over an interval (or since the start)."""

    op: str
    ios: int  # completed requests
    bytes: int
    timed: int  # completions whose start was seen (sum of hist)
    total_ns: int
    max_ns: Optional[int]  # exact, when known
    hist: Tuple[int, ...]  # NSLOTS log2 us buckets

    @property
    def untimed(self) -> int:
        return self.ios - self.timed

    @property
    def avg_us(self) -> Optional[float]:
        return self.total_ns / self.timed / 1e3 if self.timed else None


@dataclass(frozen=True)
class DiskRow:
    disk: str  # name from /sys/block, or "MAJ:MIN" when it has none
    dev: str  # "MAJ:MIN"
    ops: Tuple[OpStats, ...]
    in_flight: Optional[int] = None  # requests started and not completed, at the read

    def op(self, name: str) -> Optional[OpStats]:
        for o in self.ops:
            if o.op == name:
                return o
        return None

    def _sum(self, attr: str, op: Optional[str] = None) -> int:
        return sum(getattr(o, attr) for o in self.ops if op is None or o.op == op)

    @property
    def ios(self) -> int:
        return self._sum("ios")

    @property
    def reads(self) -> int:
        return self._sum("ios", "read")

    @property
    def writes(self) -> int:
        return self._sum("ios", "write")

    @property
    def flushes(self) -> int:
        return self._sum("ios", "flush")

    @property
    def discards(self) -> int:
        return self._sum("ios", "discard")

    @property
    def bytes(self) -> int:
        return self._sum("bytes")

    @property
    def timed(self) -> int:
        return self._sum("timed")

    @property
    def total_ns(self) -> int:
        return self._sum("total_ns")

    def hist(self, op: Optional[str] = None) -> Tuple[int, ...]:
        """Histogram of one operation, or of all of them (None)."""
        return add_hists(o.hist for o in self.ops if op is None or o.op == op)

    def max_ns(self, op: Optional[str] = None) -> Optional[int]:
        values = [o.max_ns for o in self.ops if (op is None or o.op == op) and o.max_ns is not None]
        return max(values) if values else None

    def percentile_us(self, q: float, op: Optional[str] = None) -> Optional[float]:
        max_ns = self.max_ns(op)
        return percentile(self.hist(op), q, None if max_ns is None else max_ns / 1e3)

    @property
    def p50_us(self) -> Optional[float]:
        return self.percentile_us(0.5)

    @property
    def p99_us(self) -> Optional[float]:
        return self.percentile_us(0.99)

    @property
    def avg_us(self) -> Optional[float]:
        return self.total_ns / self.timed / 1e3 if self.timed else None


@dataclass(frozen=True)
class DiskSnapshot:
    interval_s: float
    taken_at: float  # epoch seconds at the end of the interval
    rows: Tuple[DiskRow, ...]  # the interval, busiest disk first
    # Since the collector started (or its filters last changed).
    cumulative: Tuple[DiskRow, ...] = ()
    cumulative_s: float = 0.0
    queued: bool = False  # latency includes OS queue time (from queue entry)
    disk_filter: Tuple[str, ...] = ()
    disk_exclude: bool = False
    op_filter: Tuple[str, ...] = ()
    op_exclude: bool = False
    hook: str = ""
    # What the kernel skipped (its BPF recursion guard: our program would
    # have run while another BPF program ran on that CPU), from the
    # programs' recursion-miss counters; None where the kernel keeps none.
    lost: Optional[int] = None  # completions not counted, this interval
    lost_total: Optional[int] = None  # the same since the cumulative start
    lost_starts: Optional[int] = None  # starts not seen: their I/O is untimed
    # Starts whose completion was skipped, found and dropped this interval
    # (too old, or older than a moment the device had nothing in flight).
    stale: int = 0
    tab: str = field(default="disk", init=False)

    @property
    def total_ios(self) -> int:
        return sum(r.ios for r in self.rows)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    def by_disk(self, cumulative: bool = False) -> Dict[str, DiskRow]:
        return {r.disk: r for r in (self.cumulative if cumulative else self.rows)}


GRAPH_SPAN_S = 300.0  # the disk graphs cover the last five minutes


def graph(history: TabHistory, snap: DiskSnapshot) -> None:
    """Per disk, (IOPS, p99 us) per interval."""
    secs = snap.interval_s or 1.0
    for row in snap.rows:
        history.series(row.disk, span_s=GRAPH_SPAN_S).append(snap.taken_at, (row.ios / secs, row.p99_us))
    for key in history.keys():  # a disk gone quiet ages out too
        history.get(key).trim(snap.taken_at - GRAPH_SPAN_S)
