"""TCP connect events from the kernel's buffer, in Python.

``EventLog`` is what the collector keeps: the rate-limited sample of
attempts the kernel streams, joined to their outcomes, for the event log
(every count comes from the kernel's aggregates, see tcp_counts.py).

Plain Python (no BCC).
"""

from __future__ import annotations

import collections
import ipaddress
import struct
import threading
import time
from typing import Deque, Dict, Optional, Tuple

from ..bpf import maps
from ..model.tcp import (
    ESTABLISHED,
    FAILED,
    PENDING,
    REFUSED,
    UNKNOWN,
    ConnectEvent,
)
from .tcp_match import MatchFilter

# struct event in bpftop/bpf/tcp.c, field for field.
EVENT = struct.Struct("<QQQIIHHHH16s16s16s")
assert EVENT.size == 88

EV_CONNECT, EV_ESTABLISHED, EV_FAILED, EV_REFUSED, EV_CONNECT_FAILED = 1, 2, 3, 4, 5
AF_INET, AF_INET6 = 2, 10
_RESULT = {EV_ESTABLISHED: ESTABLISHED, EV_FAILED: FAILED, EV_REFUSED: REFUSED, EV_CONNECT_FAILED: FAILED}

MAX_EVENTS = 500  # the event log kept for display
MAX_OPEN = 65536  # attempts still in SYN_SENT, as the kernel's MAX_PENDING

class AddressText:
    """(packed address, compressed text) of a raw event address; the text
    is cached, as the same few addresses come back again and again."""

    def __init__(self) -> None:
        self._cache: Dict[bytes, str] = {}

    def __call__(self, family: int, raw: bytes) -> Tuple[bytes, str]:
        key = raw[:4] if family == AF_INET else raw
        text = self._cache.get(key)
        if text is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            text = str(ipaddress.IPv4Address(key) if family == AF_INET else ipaddress.IPv6Address(key))
            self._cache[key] = text
        return key, text


class _Attempt:
    __slots__ = (
        "comm",
        "counted",
        "daddr",
        "dest_key",
        "dport",
        "family",
        "frozen",
        "latency_us",
        "pid",
        "result",
        "saddr",
        "seq",
        "sport",
        "ts",
        "uid",
    )
    seq: int
    ts: float
    pid: int
    uid: int
    comm: str
    family: int
    saddr: str
    sport: int
    daddr: str
    dport: int
    result: str
    latency_us: Optional[float]
    counted: bool
    dest_key: Optional[Tuple[int, bytes, int]]
    # Kept once the outcome is in: an attempt shows the same at every take
    # after that, and a slowly filling log is not copied again each interval.
    frozen: Optional[ConnectEvent]

    def __init__(self) -> None:
        self.frozen = None

    def freeze(self, offset: float) -> ConnectEvent:
        if self.frozen is not None:
            return self.frozen
        event = ConnectEvent(
            self.seq, self.ts + offset, self.pid, self.uid, self.comm, self.family, self.saddr, self.sport,
            self.daddr, self.dport, self.result, self.latency_us,
        )
        if self.result != PENDING:
            self.frozen = event
        return event


class EventLog:
    """The event log the collector keeps from the kernel's rate-limited
    event stream: attempts joined to their outcome by socket address, for
    display only (every count comes from the kernel's aggregates).

    The kernel sends an outcome only when its attempt's event went out, so
    an outcome without its attempt here is one whose attempt was lost (a
    full buffer, counted there) or read later (per-CPU perf buffers are read
    one after the other: it waits for its attempt)."""

    def __init__(self, outcomes: bool = True, max_events: int = MAX_EVENTS) -> None:
        self.outcomes = outcomes
        self.match = MatchFilter()
        self._lock = threading.Lock()
        self._offset = time.time() - time.monotonic()
        self._addr = AddressText()
        self._log: Deque[_Attempt] = collections.deque(maxlen=max_events)
        self._seq = 0
        self._reset()

    def _reset(self) -> None:
        # Keyed by socket address and the attempt's time (an outcome's time
        # less its latency, to the nanosecond): the kernel reuses a freed
        # socket's address at once, and per-CPU perf buffers, read one after
        # the other, bring two attempts (or two outcomes) of one address
        # before the others. Keyed by address alone, the second took the
        # first's place, which stayed "pending" for good.
        self._open: Dict[Tuple[int, int], _Attempt] = {}
        self._early: Dict[Tuple[int, int], Tuple[int, int, int, int, bytes]] = {}
        self._log.clear()
        self.streamed = 0  # attempt events that passed the Python-side filter

    def reset(self, match: Optional[MatchFilter] = None) -> None:
        """Start again (the counts restarted), with ``match`` if given."""
        with self._lock:
            if match is not None:
                self.match = match
            self._reset()

    def feed(self, data: bytes) -> None:
        """One raw event (``struct event``) from the buffer."""
        ts, sk, lat, pid, uid, kind, family, sport, dport, saddr, daddr, comm = EVENT.unpack_from(data)
        with self._lock:
            if kind in (EV_CONNECT, EV_CONNECT_FAILED):
                dpacked, dtext = self._addr(family, daddr)
                name = maps.comm(comm)
                if self.match.active and not self.match.matches(name, ipaddress.ip_address(dpacked)):
                    return
                att = _Attempt()
                self._seq += 1
                self.streamed += 1
                att.seq, att.ts, att.pid, att.uid, att.comm = self._seq, ts / 1e9, pid, uid, name
                att.family = 4 if family == AF_INET else 6
                att.saddr, att.sport, att.daddr, att.dport = self._addr(family, saddr)[1], sport, dtext, dport
                att.result = PENDING if self.outcomes else UNKNOWN
                att.latency_us = None
                att.counted, att.dest_key = True, None
                self._log.append(att)
                if kind == EV_CONNECT_FAILED:
                    att.result = FAILED
                elif self.outcomes:
                    early = self._early.pop((sk, ts), None)
                    if early is not None:
                        self._outcome(att, *early)
                    else:
                        if len(self._open) >= MAX_OPEN:
                            self._open.pop(next(iter(self._open)))
                        self._open[(sk, ts)] = att
            elif kind in (EV_ESTABLISHED, EV_FAILED, EV_REFUSED):
                opened = self._open.pop((sk, ts - lat), None)
                if opened is not None:
                    self._outcome(opened, kind, lat, sport, family, saddr)
                else:
                    if len(self._early) >= MAX_OPEN:
                        self._early.pop(next(iter(self._early)))
                    self._early[(sk, ts - lat)] = (kind, lat, sport, family, saddr)

    def _outcome(self, att: _Attempt, kind: int, lat_ns: int, sport: int, family: int, saddr: bytes) -> None:
        att.result = _RESULT[kind]
        att.latency_us = lat_ns / 1e3
        att.sport = sport
        att.saddr = self._addr(family, saddr)[1]

    def take(self) -> Tuple[Tuple[ConnectEvent, ...], int]:
        """The log, newest first, and how many attempts were streamed."""
        with self._lock:
            return tuple(a.freeze(self._offset) for a in reversed(self._log)), self.streamed
