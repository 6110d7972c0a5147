"""The disk collector's counters: per (disk, operation) cumulative kernel
counters summed over CPUs, their differences, and the rows made of them.
Plain Python, no BCC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Tuple

from ..bpf import maps
from ..model.common import Counters
from ..model.disk import NSLOTS, OPS, DiskRow, OpStats
from . import disknames

Key = Tuple[int, int]  # (kernel dev, op index)


@dataclass(frozen=True)
class Counter(Counters):
    """One (disk, op)'s cumulative kernel counters, summed over CPUs."""

    ios: int = 0
    bytes: int = 0
    timed: int = 0
    total_ns: int = 0
    slots: Tuple[int, ...] = (0,) * NSLOTS


def sum_percpu(values: Iterable[Any], epoch: int) -> Tuple[Counter, Optional[int]]:
    """Sum one key's per-CPU values; also the largest latency any CPU saw in
    the interval of ``epoch`` (None when none did)."""
    values = list(values)
    slots = [0] * NSLOTS
    top: Optional[int] = None
    e = epoch & 1
    for v in values:
        for i in range(NSLOTS):
            slots[i] += v.slots[i]
        if v.max_epoch[e] == epoch and (top is None or v.max_ns[e] > top):
            top = v.max_ns[e]
    ios, nbytes, timed, total = maps.sum_fields(values, ("ios", "bytes", "timed", "total_ns"))
    return Counter(ios, nbytes, timed, total, tuple(slots)), top


def op_stats(op: int, c: Counter, max_ns: Optional[int]) -> OpStats:
    return OpStats(OPS[op], c.ios, c.bytes, c.timed, c.total_ns, max_ns if c.timed else None, c.slots)


def disk_rows(
    current: Dict[Key, Counter],
    base: Dict[Key, Counter],
    maxes: Dict[Key, Optional[int]],
    devs: Iterable[int],
    names: disknames.BlockDevices,
    in_flight: Dict[int, int],
) -> Tuple[DiskRow, ...]:
    """Rows for ``devs``: counters minus ``base``, busiest disk first."""
    rows = []
    for dev in devs:
        ops = []
        for (d, op), cur in sorted(current.items()):
            if d != dev:
                continue
            delta = cur.minus(base.get((d, op), Counter()))
            if delta.ios or delta.timed or delta.bytes:
                ops.append(op_stats(op, delta, maxes.get((d, op))))
        rows.append(DiskRow(names.name(dev), disknames.majmin(dev), tuple(ops), in_flight.get(dev, 0)))
    rows.sort(key=lambda r: (-r.ios, r.disk))
    return tuple(rows)


def device_in_flight(dev: int) -> Optional[int]:
    """The block layer's own count of requests in flight on a disk."""
    try:
        with open(f"/sys/dev/block/{dev >> 20}:{dev & 0xFFFFF}/inflight") as f:
            return sum(int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None


def minus_known(a: Optional[int], b: Optional[int]) -> Optional[int]:
    return None if a is None or b is None else a - b
