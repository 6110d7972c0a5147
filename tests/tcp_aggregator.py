"""Snapshots of the TCP tab built from synthetic events, for the renderer,
UI and recording tests: every event joined and counted in Python, as the
collector did before the kernel counted connects itself (the product keeps
only the event log, ``tcp_events.EventLog``, and reads its counts from the
kernel's aggregates, ``tcp_counts``)."""

from __future__ import annotations

import collections
import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Deque, Dict, Optional, Tuple

from bpftop.bpf import maps
from bpftop.collectors.tcp_events import (
    _RESULT,
    AF_INET,
    EV_CONNECT,
    EV_CONNECT_FAILED,
    EV_ESTABLISHED,
    EV_FAILED,
    EV_REFUSED,
    EVENT,
    MAX_EVENTS,
    MAX_OPEN,
    AddressText,
    _Attempt,
)
from bpftop.collectors.tcp_match import MatchFilter
from bpftop.model.disk import NSLOTS, slot_of_us
from bpftop.model.tcp import (
    PENDING,
    UNKNOWN,
    ConnectEvent,
    DestinationRow,
    FamilyCount,
    OutcomeCount,
    TcpProcessRow,
)

HISTORY = 300  # rate samples kept for the time series
MAX_PROCESSES = 16384
MAX_DESTINATIONS = 16384
# With process churn (a new pid per connect) an uncapped list grew by 50
# pids an interval, to 5 MB JSON lines and rising CPU; what the cap leaves
# out is counted in pids_dropped.
MAX_DEST_PIDS = 64


class _Dest:
    __slots__ = (
        "count",
        "daddr",
        "dport",
        "established",
        "failures",
        "family",
        "lat_ns",
        "new",
        "pids",
        "pids_dropped",
        "timed",
    )

    def __init__(self, daddr: str, dport: int, family: int) -> None:
        self.daddr, self.dport, self.family = daddr, dport, family
        self.count = self.new = self.failures = self.established = self.lat_ns = self.timed = 0
        self.pids: Dict[int, str] = {}
        self.pids_dropped = 0  # connects from pids the list had no room for

    def add_pid(self, pid: int, name: str) -> None:
        if pid in self.pids or len(self.pids) < MAX_DEST_PIDS:
            self.pids[pid] = name
        else:
            self.pids_dropped += 1


class _Proc:
    __slots__ = ("comm", "count", "established", "failures", "lat_ns", "new", "pid", "timed", "uid")

    def __init__(self, pid: int, comm: str, uid: int) -> None:
        self.pid, self.comm, self.uid = pid, comm, uid
        self.count = self.new = self.failures = self.established = self.lat_ns = self.timed = 0


@dataclass(frozen=True)
class Taken:
    """What one ``take()`` hands the collector for a snapshot."""

    since: float
    destinations: Tuple[DestinationRow, ...]
    processes: Tuple[TcpProcessRow, ...]
    events: Tuple[ConnectEvent, ...]
    connects: int
    failures: int
    total_connects: int
    total_failures: int
    families: Tuple[FamilyCount, ...]
    rate_history: Tuple[float, ...]
    orphan_results: int
    overflow_destinations: int
    outcome_counts: Tuple[OutcomeCount, ...] = ()
    latency_hist: Tuple[int, ...] = ()
    latency_sum_ns: int = 0


def _avg_us(lat_ns: int, n: int) -> Optional[float]:
    return lat_ns / n / 1e3 if n else None


class Aggregator:
    def __init__(
        self,
        outcomes: bool = True,
        max_events: int = MAX_EVENTS,
        max_destinations: int = MAX_DESTINATIONS,
        max_processes: int = MAX_PROCESSES,
        history: int = HISTORY,
    ) -> None:
        self.outcomes = outcomes
        self.max_destinations = max_destinations
        self.max_processes = max_processes
        self.match = MatchFilter()
        self._lock = threading.Lock()
        # bpf_ktime_get_ns() is CLOCK_MONOTONIC, as time.monotonic() on Linux.
        self._offset = time.time() - time.monotonic()
        self._addr = AddressText()
        self._log: Deque[_Attempt] = collections.deque(maxlen=max_events)
        self._history: Deque[float] = collections.deque(maxlen=history)
        self._seq = 0
        self._reset()

    def _reset(self) -> None:
        self.since = time.time()
        self._open: Dict[int, _Attempt] = {}  # skaddr -> attempt in SYN_SENT
        # skaddr -> an outcome read before its attempt: (the attempt's
        # time, kind, latency, sport, family, saddr).
        self._early: Dict[int, Tuple[int, int, int, int, int, bytes]] = {}
        self._dests: Dict[Tuple[int, bytes, int], _Dest] = {}
        self._procs: Dict[int, _Proc] = {}
        self._fam = {4: [0, 0], 6: [0, 0]}
        self._log.clear()
        self._history.clear()
        self._connects = self._failures = 0  # this interval
        self._total_connects = self._total_failures = 0
        self._orphans = self._overflow = 0
        self._by_outcome: Dict[Tuple[int, str], int] = {}
        self._lat_hist = [0] * NSLOTS
        self._lat_sum_ns = 0

    def reset(self) -> None:
        """Start counting again (a filter changed)."""
        with self._lock:
            self._reset()

    def set_match(self, match: MatchFilter) -> None:
        with self._lock:
            self.match = match
            self._reset()

    # -- feeding ----------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """One raw event (``struct event``) from the buffer."""
        ts, sk, lat, pid, uid, kind, family, sport, dport, saddr, daddr, comm = EVENT.unpack_from(data)
        with self._lock:
            if kind in (EV_CONNECT, EV_CONNECT_FAILED):
                att = self._attempt(ts, sk, pid, uid, kind, family, sport, dport, saddr, daddr, comm)
                if kind == EV_CONNECT_FAILED and att is not None:
                    self._outcome(att, kind, lat, sport, family, saddr)
                elif kind == EV_CONNECT:
                    self._join_early(sk, ts)
            elif kind in (EV_ESTABLISHED, EV_FAILED, EV_REFUSED):
                att = self._open.pop(sk, None)
                if att is None:
                    # A perf buffer is one buffer per CPU, read one after the
                    # other: an outcome handled on another CPU than its
                    # connect() can be read first. It waits for its attempt.
                    self._orphans += 1
                    if len(self._early) >= MAX_OPEN:
                        self._early.pop(next(iter(self._early)))
                    self._early[sk] = (ts - lat, kind, lat, sport, family, saddr)
                elif att.counted:
                    self._outcome(att, kind, lat, sport, family, saddr)

    def _attempt(self, ts: int, sk: int, pid: int, uid: int, kind: int, family: int, sport: int, dport: int,
                 saddr: bytes, daddr: bytes, comm: bytes) -> Optional[_Attempt]:
        dpacked, dtext = self._addr(family, daddr)
        name = maps.comm(comm)
        att = _Attempt()
        att.counted = not self.match.active or self.match.matches(name, ipaddress.ip_address(dpacked))
        if self.outcomes and kind == EV_CONNECT:
            if len(self._open) >= MAX_OPEN:
                self._open.pop(next(iter(self._open)))  # the oldest: the kernel's LRU dropped it too
            self._open[sk] = att
        if not att.counted:
            return None
        fam = 4 if family == AF_INET else 6
        self._seq += 1
        att.seq, att.ts, att.pid, att.uid, att.comm, att.family = self._seq, ts / 1e9, pid, uid, name, fam
        att.saddr, att.sport, att.daddr, att.dport = self._addr(family, saddr)[1], sport, dtext, dport
        att.result = PENDING if self.outcomes else UNKNOWN
        att.latency_us = None
        self._log.append(att)

        self._connects += 1
        self._total_connects += 1
        self._fam[fam][0] += 1
        key = (fam, dpacked, dport)
        dest = self._dests.get(key)
        if dest is None and len(self._dests) < self.max_destinations:
            dest = self._dests[key] = _Dest(att.daddr, dport, fam)
        if dest is None:
            self._overflow += 1
            att.dest_key = None
        else:
            att.dest_key = key
            dest.count += 1
            dest.new += 1
            dest.add_pid(pid, name)
        proc = self._procs.get(pid)
        if proc is None:
            if len(self._procs) >= self.max_processes:
                self._forget_a_process()
            proc = self._procs[pid] = _Proc(pid, name, uid)
        proc.comm, proc.uid = name, uid
        proc.count += 1
        proc.new += 1
        return att

    def _join_early(self, sk: int, ts: int) -> None:
        """The outcome of the attempt at ``ts`` on ``sk``, if it came first.
        Its time less its latency is the attempt's time to the nanosecond
        (both are the kernel's): an outcome of an earlier socket at the same
        address, whose attempt was lost, stays an orphan."""
        early = self._early.get(sk)
        if early is None or early[0] != ts:
            return
        del self._early[sk]
        self._orphans -= 1
        att = self._open.pop(sk, None)
        if att is not None and att.counted:
            self._outcome(att, *early[1:])

    def _forget_a_process(self) -> None:
        # The process table is full: drop the quietest one (a pid scan).
        pid = min(self._procs, key=lambda p: (self._procs[p].new, self._procs[p].count))
        del self._procs[pid]

    def _outcome(self, att: _Attempt, kind: int, lat_ns: int, sport: int, family: int, saddr: bytes) -> None:
        att.result = _RESULT[kind]
        att.latency_us = lat_ns / 1e3 if kind != EV_CONNECT_FAILED else None
        att.sport = sport
        att.saddr = self._addr(family, saddr)[1]
        key = (att.family, att.result)
        self._by_outcome[key] = self._by_outcome.get(key, 0) + 1
        if kind != EV_CONNECT_FAILED:
            self._lat_hist[slot_of_us(lat_ns / 1e3)] += 1
            self._lat_sum_ns += lat_ns
        dest = self._dests.get(att.dest_key) if att.dest_key else None
        proc = self._procs.get(att.pid)
        # The average is over every outcome that carries its time (a refusal
        # or a timeout too): a destination that only refuses still answers
        # in a measurable time. A connect() that failed at once has none.
        if kind != EV_CONNECT_FAILED:
            for agg in (dest, proc):
                if agg is not None:
                    agg.timed += 1
                    agg.lat_ns += lat_ns
        if kind == EV_ESTABLISHED:
            for agg in (dest, proc):
                if agg is not None:
                    agg.established += 1
            return
        self._failures += 1
        self._total_failures += 1
        self._fam[att.family][1] += 1
        for agg in (dest, proc):
            if agg is not None:
                agg.failures += 1

    # -- reading ----------------------------------------------------------
    def take(self, interval_s: float) -> Taken:
        """Freeze the state; the interval counts start again."""
        with self._lock:
            self._history.append(self._connects / interval_s if interval_s > 0 else 0.0)
            dests = tuple(
                DestinationRow(
                    d.daddr, d.dport, d.family, d.count, d.new, d.failures, d.established,
                    _avg_us(d.lat_ns, d.timed), tuple(d.pids), tuple(sorted(set(d.pids.values()))),
                    d.pids_dropped, d.timed,
                )
                for d in self._dests.values()
            )
            procs = tuple(
                TcpProcessRow(p.pid, p.comm, p.uid, p.count, p.new, p.failures, p.established,
                              _avg_us(p.lat_ns, p.timed), p.timed)
                for p in self._procs.values()
            )
            events = tuple(a.freeze(self._offset) for a in reversed(self._log))
            taken = Taken(
                since=self.since,
                destinations=tuple(sorted(dests, key=lambda r: (-r.count, r.family, r.daddr, r.dport))),
                processes=tuple(sorted(procs, key=lambda r: (-r.count, r.pid))),
                events=events,
                connects=self._connects,
                failures=self._failures,
                total_connects=self._total_connects,
                total_failures=self._total_failures,
                families=tuple(FamilyCount(f, c, x) for f, (c, x) in sorted(self._fam.items())),
                rate_history=tuple(self._history),
                orphan_results=self._orphans,
                overflow_destinations=self._overflow,
                outcome_counts=tuple(OutcomeCount(f, r, n) for (f, r), n in sorted(self._by_outcome.items())),
                latency_hist=tuple(self._lat_hist),
                latency_sum_ns=self._lat_sum_ns,
            )
            for d in self._dests.values():
                d.new = 0
            for p in self._procs.values():
                p.new = 0
            self._connects = self._failures = 0
            return taken
