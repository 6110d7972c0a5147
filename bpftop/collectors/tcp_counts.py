"""The TCP aggregates the kernel keeps (``agg`` in bpftop/bpf/tcp.c), turned
into the snapshot's rows.

Plain Python (no BCC): the collector hands each interval's map entries as
raw bytes. The kernel's counters only go up within a counting generation;
the interval's ``new`` figures are differences against the previous read.
The Python-side filter (process name, destination networks) is applied per
key, so every figure it leaves stays exact.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..bpf import maps
from ..model.disk import NSLOTS
from ..model.tcp import ESTABLISHED, FAILED, REFUSED, DestinationRow, FamilyCount, OutcomeCount, TcpProcessRow
from .tcp_events import AF_INET, AddressText
from .tcp_match import MatchFilter

# struct agg_key and struct agg_val in bpftop/bpf/tcp.c, field for field.
KEY = struct.Struct("<IIIHH16s16s")
VALUE = struct.Struct(f"<9Q{NSLOTS}Q")
assert KEY.size == 48 and VALUE.size == 8 * (9 + NSLOTS)

# As the event aggregator before it: with process churn (a new pid per
# connect) an uncapped list grew without end; what the cap leaves out is
# counted in pids_dropped.
MAX_DEST_PIDS = 64


@dataclass(frozen=True)
class Key:
    pid: int
    uid: int
    gen: int
    family: int  # 4 or 6
    daddr: str
    dport: int
    comm: str
    packed: bytes  # the destination address, 4 or 16 bytes


@dataclass(frozen=True)
class Counts:
    attempts: int = 0
    sent: int = 0  # attempts the rate limit let out as events
    established: int = 0
    refused: int = 0
    failed: int = 0
    timed: int = 0
    lat_ns: int = 0
    first_ns: int = 0
    last_ns: int = 0
    slots: Tuple[int, ...] = (0,) * NSLOTS

    @property
    def failures(self) -> int:
        return self.refused + self.failed

    @property
    def not_streamed(self) -> int:
        return self.attempts - self.sent


def parse_value(raw: bytes) -> Counts:
    v = VALUE.unpack_from(raw)
    return Counts(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], tuple(v[9:]))


def add_counts(values: Iterable[Counts]) -> Counts:
    """Field by field (per-CPU copies of one bucket, or keys folded
    together); first_ns is the earliest, last_ns the latest."""
    total = [0] * 7
    slots = [0] * NSLOTS
    first = last = 0
    for c in values:
        for i, n in enumerate((c.attempts, c.sent, c.established, c.refused, c.failed, c.timed, c.lat_ns)):
            total[i] += n
        for i, n in enumerate(c.slots):
            slots[i] += n
        if c.first_ns and (not first or c.first_ns < first):
            first = c.first_ns
        last = max(last, c.last_ns)
    attempts, sent, established, refused, failed, timed, lat_ns = total
    return Counts(attempts, sent, established, refused, failed, timed, lat_ns, first, last, tuple(slots))


def plus(had: Optional[Counts], c: Counts) -> Counts:
    """``c`` added to what a key already had, if anything."""
    return c if had is None else add_counts((had, c))


class KeyParser:
    """Raw key bytes -> Key, cached: the same keys come back every interval.
    ``forget_others()`` after each read keeps only the keys it saw."""

    def __init__(self) -> None:
        self._cache: Dict[bytes, Key] = {}
        self._seen: Dict[bytes, Key] = {}
        self._addr = AddressText()

    def __call__(self, raw: bytes) -> Key:
        key = self._cache.get(raw)
        if key is None:
            pid, uid, gen, family, dport, daddr, comm = KEY.unpack_from(raw)
            packed, text = self._addr(family, daddr)
            key = Key(pid, uid, gen, 4 if family == AF_INET else 6, text, dport, maps.comm(comm), packed)
        self._seen[raw] = key
        return key

    def forget_others(self) -> None:
        self._cache, self._seen = self._seen, {}


@dataclass(frozen=True)
class Totals:
    """What one ``CountTable.update()`` makes of the kernel's counts."""

    destinations: Tuple[DestinationRow, ...]
    processes: Tuple[TcpProcessRow, ...]
    connects: int  # this interval
    failures: int  # this interval
    total_connects: int
    total_failures: int
    families: Tuple[FamilyCount, ...]
    outcome_counts: Tuple[OutcomeCount, ...]
    latency_hist: Tuple[int, ...]
    latency_sum_ns: int
    overflow: int  # attempts counted past the table's limit
    not_streamed: int


def _avg_us(lat_ns: int, n: int) -> Optional[float]:
    return lat_ns / n / 1e3 if n else None


class _Sum:
    __slots__ = ("count", "established", "failures", "lat_ns", "new", "timed")

    def __init__(self) -> None:
        self.count = self.new = self.failures = self.established = self.lat_ns = self.timed = 0

    def add(self, c: Counts, new: int) -> None:
        self.count += c.attempts
        self.new += new
        self.failures += c.failures
        self.established += c.established
        self.lat_ns += c.lat_ns
        self.timed += c.timed


class CountTable:
    """The current generation's keys, read each interval; remembers the
    previous read for the interval's differences."""

    def __init__(self, match: Optional[MatchFilter] = None) -> None:
        self.match = match or MatchFilter()
        self._matched: Dict[Key, bool] = {}
        self._prev: Dict[Key, int] = {}  # attempts at the previous read
        self._prev_totals = (0, 0)

    def matches(self, key: Key) -> bool:
        ok = self._matched.get(key)
        if ok is None:
            ok = not self.match.active or self.match.matches(key.comm, ipaddress.ip_address(key.packed))
        return ok

    def update(self, entries: Sequence[Tuple[Key, Counts]], spill: Sequence[Tuple[int, Counts]],
               kept: Sequence[Tuple[int, Counts]] = ()) -> Totals:
        """``entries``: every key of the current generation with its counts;
        ``spill``: per IP version, what was counted when the table was full.
        Without a Python-side filter the spill is in every total; with one
        it cannot be told apart, and is only counted as overflow. ``kept``:
        per IP version, keys the collector folded away that the filter
        matched (in every total, in no row)."""
        dests: Dict[Tuple[int, bytes, int], _Sum] = {}
        dest_keys: Dict[Tuple[int, bytes, int], List[Tuple[Key, Counts]]] = {}
        procs: Dict[int, _Sum] = {}
        proc_latest: Dict[int, Tuple[int, Key]] = {}
        fam = {4: [0, 0], 6: [0, 0]}
        outcomes: Dict[Tuple[int, str], int] = {}
        hist = [0] * NSLOTS
        lat_sum = not_streamed = 0
        prev, self._prev = self._prev, {}
        matched, self._matched = self._matched, {}

        def account(family: int, c: Counts) -> None:
            nonlocal lat_sum, not_streamed
            fam[family][0] += c.attempts
            fam[family][1] += c.failures
            for result, n in ((ESTABLISHED, c.established), (REFUSED, c.refused), (FAILED, c.failed)):
                if n:
                    outcomes[(family, result)] = outcomes.get((family, result), 0) + n
            for i, n in enumerate(c.slots):
                hist[i] += n
            lat_sum += c.lat_ns
            not_streamed += c.not_streamed

        for key, c in entries:
            ok = matched.get(key)
            if ok is None:
                ok = self.matches(key)
            self._matched[key] = ok
            if not ok:
                continue
            new = c.attempts - prev.get(key, 0)
            self._prev[key] = c.attempts
            account(key.family, c)
            dk = (key.family, key.packed, key.dport)
            d = dests.get(dk)
            if d is None:
                d = dests[dk] = _Sum()
                dest_keys[dk] = []
            d.add(c, new)
            dest_keys[dk].append((key, c))
            p = procs.get(key.pid)
            if p is None:
                p = procs[key.pid] = _Sum()
            p.add(c, new)
            latest = proc_latest.get(key.pid)
            if latest is None or c.last_ns > latest[0]:
                proc_latest[key.pid] = (c.last_ns, key)

        overflow = 0
        for family, c in spill:
            overflow += c.attempts
            if not self.match.active:
                account(family, c)
        for family, c in kept:
            overflow += c.attempts
            account(family, c)
        total = (fam[4][0] + fam[6][0], fam[4][1] + fam[6][1])
        # The interval's figures from the totals: a key folded away moves
        # its counts, it does not add them again.
        connects, failures = total[0] - self._prev_totals[0], total[1] - self._prev_totals[1]
        self._prev_totals = total

        rows = []
        for dk, d in dests.items():
            pids, comms, dropped = _dest_pids(dest_keys[dk])
            key0 = dest_keys[dk][0][0]
            rows.append(DestinationRow(key0.daddr, key0.dport, key0.family, d.count, d.new, d.failures,
                                       d.established, _avg_us(d.lat_ns, d.timed), pids, comms, dropped, d.timed))
        prows = []
        for pid, p in procs.items():
            key = proc_latest[pid][1]
            prows.append(TcpProcessRow(pid, key.comm, key.uid, p.count, p.new, p.failures, p.established,
                                       _avg_us(p.lat_ns, p.timed), p.timed))
        return Totals(
            destinations=tuple(sorted(rows, key=lambda r: (-r.count, r.family, r.daddr, r.dport))),
            processes=tuple(sorted(prows, key=lambda r: (-r.count, r.pid))),
            connects=connects,
            failures=failures,
            total_connects=total[0],
            total_failures=total[1],
            families=tuple(FamilyCount(f, c, x) for f, (c, x) in sorted(fam.items())),
            outcome_counts=tuple(OutcomeCount(f, r, n) for (f, r), n in sorted(outcomes.items())),
            latency_hist=tuple(hist),
            latency_sum_ns=lat_sum,
            overflow=overflow,
            not_streamed=not_streamed,
        )


def _dest_pids(keys: List[Tuple[Key, Counts]]) -> Tuple[Tuple[int, ...], Tuple[str, ...], int]:
    """The first MAX_DEST_PIDS processes to connect to a destination, the
    names they had last, and the connects of the processes past them."""
    first: Dict[int, int] = {}
    latest: Dict[int, Tuple[int, str]] = {}
    attempts: Dict[int, int] = {}
    for key, c in keys:
        if key.pid not in first or c.first_ns < first[key.pid]:
            first[key.pid] = c.first_ns
        if key.pid not in latest or c.last_ns > latest[key.pid][0]:
            latest[key.pid] = (c.last_ns, key.comm)
        attempts[key.pid] = attempts.get(key.pid, 0) + c.attempts
    order = sorted(first, key=lambda pid: (first[pid], pid))
    listed = order[:MAX_DEST_PIDS]
    dropped = sum(attempts[pid] for pid in order[MAX_DEST_PIDS:])
    return tuple(listed), tuple(sorted({latest[pid][1] for pid in listed})), dropped
