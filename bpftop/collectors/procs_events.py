"""Process events from the kernel (exec, exit, open, signal), decoded and
kept for display, and the kernel's per-process counts turned into rows.

Plain Python (no BCC): the collector feeds it the raw bytes of each event
as the buffer delivers them, and the counts map's entries as tuples at
each interval; ``take()`` freezes the state into snapshot parts.
"""

from __future__ import annotations

import collections
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Container, Deque, Dict, Generic, Iterable, Iterator, List, Optional, Tuple, TypeVar

from ..bpf import maps
from ..model.procs import ExecEvent, ExitEvent, OpenEvent, ProcRow, SignalEvent, signal_result

# Sizes handed to procs.c as -D flags; struct event's layout follows them.
PATH_LEN = 256
ARG_LEN = 64
MAX_ARGS = 8
# struct event in bpftop/bpf/procs.c up to its path, field for field.
HEADER = struct.Struct("<QQIIIIIiIIII16s")
assert HEADER.size == 72
_KIND, _KIND_AT = struct.Struct("<I"), 16  # struct event's kind
SMALL_SIZE = HEADER.size + PATH_LEN
FULL_SIZE = SMALL_SIZE + MAX_ARGS * ARG_LEN
TRUNC_MORE_ARGS = 31

EV_EXEC, EV_EXIT, EV_OPEN, EV_SIGNAL = 1, 2, 3, 4
# The "lost" map's slots, as LOST_* in procs.c.
LOST_KINDS = ("exec", "exit", "open", "signal", "counts", "pending")
# struct counts' u64 fields, in order.
COUNT_FIELDS = ("execs", "exits", "forks", "opens", "open_fails", "sig_sent", "sig_recv")
_EXITS = COUNT_FIELDS.index("exits")

MAX_EVENTS = 500  # per event log kept for display
MAX_ARGV_MEMO = 4096  # argv of recent execs, to show beside their exit


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


E = TypeVar("E", OpenEvent, SignalEvent)


class _Kept(Generic[E]):
    """An event in the log: raw until the first take that shows it decodes
    it, so a log that fills slowly (an idle machine) is not decoded again
    at every interval."""

    __slots__ = ("event", "raw", "seq")

    def __init__(self, seq: int, raw: bytes) -> None:
        self.seq = seq
        self.raw = raw
        self.event: Optional[E] = None


@dataclass(frozen=True)
class Taken:
    since: float
    execs: Tuple[ExecEvent, ...]
    exits: Tuple[ExitEvent, ...]
    opens: Tuple[OpenEvent, ...]
    signals: Tuple[SignalEvent, ...]
    exited_now: Tuple[ExitEvent, ...]  # exits that arrived since the last take


class EventLog:
    """The decoded events, bounded per kind; every event counts in the
    interval's exit list, only the latest are kept for display."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._lock = threading.Lock()
        # bpf_ktime_get_ns() is CLOCK_MONOTONIC, as time.monotonic() on Linux.
        self._offset = time.time() - time.monotonic()
        self.max_events = max_events
        self._execs: Deque[ExecEvent] = collections.deque(maxlen=max_events)
        self._exits: Deque[ExitEvent] = collections.deque(maxlen=max_events)
        self._opens: Deque[_Kept[OpenEvent]] = collections.deque(maxlen=max_events)
        self._signals: Deque[_Kept[SignalEvent]] = collections.deque(maxlen=max_events)
        self._argv: collections.OrderedDict[int, Tuple[str, ...]] = collections.OrderedDict()
        self._exited_now: List[ExitEvent] = []
        self.comms: Dict[int, str] = {}  # the latest name seen per pid
        self._seq = 0
        self.since = time.time()

    def reset(self) -> None:
        with self._lock:
            for log in (self._execs, self._exits, self._opens, self._signals):
                log.clear()
            self._exited_now = []
            self.since = time.time()

    def feed(self, data: bytes) -> None:
        """One raw event (``struct event``) from the buffer. Opens and
        signals, the bulk of the events, are kept raw (the log is bounded)
        and decoded only when a snapshot takes them."""
        if len(data) < SMALL_SIZE:
            return
        kind = _KIND.unpack_from(data, _KIND_AT)[0]
        with self._lock:
            self._seq += 1
            if kind == EV_OPEN:
                self._opens.append(_Kept(self._seq, data[:SMALL_SIZE]))
            elif kind == EV_SIGNAL:
                self._signals.append(_Kept(self._seq, data[:HEADER.size]))
            elif kind in (EV_EXEC, EV_EXIT):
                self._lifecycle(self._seq, kind, data)

    def _lifecycle(self, seq: int, kind: int, data: bytes) -> None:
        (ts, start, _, pid, _, ppid, uid, ret, flags, _, argc, trunc, comm_raw) = HEADER.unpack_from(data)
        comm = maps.comm(comm_raw)
        when = ts / 1e9 + self._offset
        if kind == EV_EXEC:
            if len(data) < FULL_SIZE:
                return
            argv = tuple(
                _text(data[SMALL_SIZE + i * ARG_LEN:SMALL_SIZE + (i + 1) * ARG_LEN])
                for i in range(min(argc, MAX_ARGS))
            )
            cut = tuple(i for i in range(len(argv)) if trunc >> i & 1)
            path = _text(data[HEADER.size:SMALL_SIZE])
            self._execs.append(ExecEvent(seq, when, pid, ppid, uid, comm, path, argv, cut,
                                         bool(trunc >> TRUNC_MORE_ARGS & 1), bool(flags & 1)))
            self._argv[pid] = argv
            self._argv.move_to_end(pid)
            while len(self._argv) > MAX_ARGV_MEMO:
                self._argv.popitem(last=False)
        else:
            lifetime = (ts - start) / 1e9 if 0 < start <= ts else None
            ev = ExitEvent(seq, when, pid, ppid, uid, comm, (ret >> 8) & 0xFF, ret & 0x7F, lifetime,
                           self._argv.pop(pid, ()))
            self._exits.append(ev)
            self._exited_now.append(ev)
        self.comms[pid] = comm

    def _open(self, seq: int, data: bytes) -> OpenEvent:
        (ts, _, _, pid, tid, _, uid, ret, flags, _, _, trunc, comm_raw) = HEADER.unpack_from(data)
        fd, err = (ret, 0) if ret >= 0 else (-1, -ret)
        return OpenEvent(seq, ts / 1e9 + self._offset, pid, tid, uid, maps.comm(comm_raw),
                         _text(data[HEADER.size:SMALL_SIZE]), flags, fd, err, bool(trunc & 1))

    def _signal(self, seq: int, data: bytes) -> SignalEvent:
        (ts, _, _, pid, _, _, _, ret, flags, target, _, _, comm_raw) = HEADER.unpack_from(data)
        return SignalEvent(seq, ts / 1e9 + self._offset, pid, maps.comm(comm_raw), target, flags, signal_result(ret))

    def take(self) -> Taken:
        with self._lock:
            taken = Taken(
                since=self.since,
                execs=tuple(reversed(self._execs)),
                exits=tuple(reversed(self._exits)),
                opens=tuple(_decoded(self._opens, self._open)),
                signals=tuple(_decoded(self._signals, self._signal)),
                exited_now=tuple(self._exited_now),
            )
            self._exited_now = []
            return taken


def _decoded(log: Deque[_Kept[E]], decode: Callable[[int, bytes], E]) -> Iterator[E]:
    """The log's events, newest first, each decoded once."""
    for kept in reversed(log):
        if kept.event is None:
            kept.event = decode(kept.seq, kept.raw)
            kept.raw = b""
        yield kept.event


def short_lived(exits: Iterable[ExitEvent], interval_s: float) -> Tuple[ExitEvent, ...]:
    """Processes that exited this interval having lived less than it: top
    and ps never see them."""
    return tuple(e for e in exits if e.lifetime_s is not None and e.lifetime_s < interval_s)


Counts = Tuple[int, ...]  # COUNT_FIELDS, in order


@dataclass
class _Acc:
    ppid: int
    uid: int
    comm: str
    totals: List[int]
    seen: Counts  # the kernel entry's values at the last read
    exited_reads: int = 0  # reads since its exit was counted


class CountTable:
    """The kernel's cumulative per-process counts as rows: since the counts
    started and this interval. Entries of processes that have exited are
    deleted from the kernel map one read after their exit was seen (their
    last signals, such as SIGCHLD to the parent, come just after the exit
    tracepoint), and their rows shown for that interval, then forgotten."""

    def __init__(self) -> None:
        self._acc: Dict[int, _Acc] = {}
        self.interval: List[int] = [0] * len(COUNT_FIELDS)

    def reset(self, current: Iterable[Tuple[int, int, int, str, Counts]]) -> None:
        """Counting starts now: what the kernel holds is the baseline."""
        self._acc = {pid: _Acc(ppid, uid, comm, [0] * len(COUNT_FIELDS), values)
                     for pid, ppid, uid, comm, values in current}
        self.interval = [0] * len(COUNT_FIELDS)

    def update(self, entries: Iterable[Tuple[int, int, int, str, Counts]],
               comms: Dict[int, str], gone: Container[int] = ()) -> Tuple[Tuple[ProcRow, ...], List[int]]:
        """Rows from one read of the map (pid, ppid, uid, comm, counts);
        returns the rows and the pids whose kernel entry to delete now.
        ``gone``: pids known to have ended although their exit was not
        counted (a filter left it out), freed like exited ones."""
        interval = [0] * len(COUNT_FIELDS)
        rows = []
        to_delete = []
        present = set()
        for pid, ppid, uid, comm, values in entries:
            present.add(pid)
            acc = self._acc.get(pid)
            if acc is None:
                acc = self._acc[pid] = _Acc(ppid, uid, comm, [0] * len(COUNT_FIELDS), (0,) * len(COUNT_FIELDS))
            delta = [max(0, v - s) for v, s in zip(values, acc.seen)]
            acc.seen = values
            for i, d in enumerate(delta):
                acc.totals[i] += d
                interval[i] += d
            acc.ppid = ppid or acc.ppid
            acc.uid = uid
            acc.comm = comm or comms.get(pid, "") or acc.comm
            # The kernel entry's own count: an exit before the counts
            # restarted still frees the entry.
            if values[_EXITS] or pid in gone:
                acc.exited_reads += 1
                if acc.exited_reads >= 2:
                    to_delete.append(pid)
            if any(acc.totals):
                rows.append(self._row(pid, acc, sum(delta)))
        for pid in list(self._acc):
            if pid not in present:
                # Deleted from the map last read: a later entry starts at 0.
                acc = self._acc[pid]
                if acc.exited_reads >= 2:
                    del self._acc[pid]
                else:
                    acc.seen = (0,) * len(COUNT_FIELDS)
        for pid in to_delete:
            acc = self._acc[pid]
            acc.seen = (0,) * len(COUNT_FIELDS)
        self.interval = interval
        return tuple(sorted(rows, key=lambda r: (-r.new, -(r.execs + r.opens + r.forks), r.pid))), to_delete

    @staticmethod
    def _row(pid: int, acc: _Acc, new: int) -> ProcRow:
        t = acc.totals
        return ProcRow(pid, acc.ppid, acc.uid, acc.comm, t[0], t[1], t[2], t[3], t[4], t[5], t[6], new,
                       exited=t[1] > 0)


def descendants(rows: Iterable[ProcRow], root: int, extra: Iterable[Tuple[int, int]] = ()) -> Tuple[int, ...]:
    """``root`` and every pid whose parent chain (from the rows' ppid and
    ``extra`` (pid, ppid) pairs, such as exec and exit events) leads to it."""
    parent: Dict[int, int] = {}
    for r in rows:
        if r.ppid:
            parent[r.pid] = r.ppid
    for pid, ppid in extra:
        if ppid:
            parent.setdefault(pid, ppid)
    out = []
    for pid in set(parent) | {root}:
        p: Optional[int] = pid
        hops = 0
        while p is not None and hops < 64:
            if p == root:
                out.append(pid)
                break
            p = parent.get(p)
            hops += 1
    return tuple(sorted(out))
