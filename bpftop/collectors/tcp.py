"""TCP collector: outgoing connect attempts (like bcc's tcpconnect and
tcpconnlat at once), with their outcome and latency, per IP version.

The kernel program counts every attempt and outcome in a hash keyed by
(process, uid, comm, destination), with a log2 latency histogram per key;
``collect()`` reads it once. Only a rate-limited sample of the attempts
(a few hundred a second, and the outcomes of those) is sent as events
through a ring buffer (perf buffer on kernels without one) for the event
log; a poll thread owned by the collector drains it. What the limit held
back and what the buffer had no room for are counted in the kernel and
shown.

Filters: pid and destination port in BPF maps (changed at run time, never
recompiled); process name regex and destination networks in Python
(``set_event_filter``), applied to each key as it is read and to each event
as it arrives. Changing any filter restarts the counts: the kernel's
counting generation moves on (see bpftop/bpf/tcp.c).
"""

from __future__ import annotations

import collections
import functools
import os
import platform
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from .. import procfs
from ..bpf import ladder, loader, maps, system
from ..model import EventBuffer, HookKind
from ..model.disk import NSLOTS
from ..model.tcp import TcpSnapshot
from .base import Collector
from .capabilities import Capabilities, EventFilter
from .event_pump import Batching, EventPump, buffer_pages
from .keyfilter import KeyFilter
from .pidfilter import PidFilter
from .tcp_counts import Counts, CountTable, Key, KeyParser, add_counts, parse_value, plus
from .tcp_events import EVENT, MAX_EVENTS, EventLog, MatchFilter

MAX_PENDING = 65536
MAX_AGG = 16384  # (process, destination) keys; past it attempts spill (counted)
# Past a quarter of MAX_AGG keys, those of exited processes move to Python
# (at most MAX_FOLDED keys, then per-IP-version totals).
FOLD_AT = MAX_AGG // 4
MAX_FOLDED = 4096
# An attempt this old has its outcome: SYN retries give up after 127 s at
# the default net.ipv4.tcp_syn_retries.
SETTLED_NS = 180 * 1_000_000_000
# The event log's sample: events a second over all CPUs, and the burst each
# CPU may send at once (a short burst shows whole in the log).
EVENT_RATE = 400
EVENT_BURST = 256
HISTORY = 300  # rate samples kept for the time series
C_ORPHAN, C_LOST_ATTEMPT, C_LOST_OUTCOME, NCOUNTS = 0, 1, 2, 3
MAX_FILTER_PIDS = 1024
MAX_FILTER_PORTS = 1024
RING_PAGES = 512  # 2 MiB: about 20,000 events, a second of a connect storm
PERF_PAGES = 64  # per CPU
BUFFERS = ("auto", "ring", "perf")


class PortFilter(KeyFilter):
    """Destination ports (the maps port_mode and filter_ports)."""

    what = "port"
    low, high = 1, 65535
    limit = MAX_FILTER_PORTS

    @property
    def ports(self) -> Tuple[int, ...]:
        return self.keys


class TcpCollector(Collector[TcpSnapshot]):
    tab = "tcp"
    title = "TCP"
    CAPABILITIES = Capabilities(
        kernel_filters=("pid", "port"),
        event_filters=("comm", "addr"),
        buffers=(EventBuffer.RING, EventBuffer.PERF),
    )

    def __init__(
        self,
        pids: Sequence[int] = (),
        ports: Sequence[int] = (),
        port_exclude: bool = False,
        buffer: str = "auto",
        ring_pages: int = RING_PAGES,
        perf_pages: int = PERF_PAGES,
        poll: bool = True,
        max_events: int = MAX_EVENTS,
        event_rate: int = EVENT_RATE,
        event_burst: int = EVENT_BURST,
        fold_at: int = FOLD_AT,
        max_folded: int = MAX_FOLDED,
    ) -> None:
        """``buffer``: "ring", "perf" or "auto" (ring, perf where the kernel
        has none). ``poll=False`` drains only in ``collect()`` (tests use it
        with a small buffer to make events get lost on purpose).
        ``event_rate`` (events a second, all CPUs) and ``event_burst`` (per
        CPU) bound the events sent for the log; ``fold_at`` and
        ``max_folded`` when exited processes' keys leave the kernel's table
        (see _fold)."""
        super().__init__()
        if buffer not in BUFFERS:
            raise ValueError(f"buffer must be one of {', '.join(BUFFERS)}, not {buffer!r}")
        for what, n in (("event rate", event_rate), ("event burst", event_burst)):
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
                raise ValueError(f"{what} must be a whole number from 1 to 1000000, not {n!r}")
        self.buffer = buffer
        self.ring_pages = buffer_pages(ring_pages, "ring buffer pages")
        self.max_events = max_events
        self.event_rate, self.event_burst = event_rate, event_burst
        self.fold_at, self.max_folded = fold_at, max_folded
        self.filter = self.key_filters["pid"] = PidFilter(pids)
        self.ports = self.key_filters["port"] = PortFilter(ports, port_exclude)
        self.log = EventLog(max_events=max_events)
        self.table = CountTable()
        self._keys = KeyParser()
        self._values: Dict[bytes, Counts] = {}  # raw value bytes -> Counts (unchanged keys parse once)
        # Keys of exited processes taken out of the kernel's table (_fold),
        # and past MAX_FOLDED of them, their counts per IP version.
        self._folded: Dict[Key, Counts] = {}
        self._kept: Dict[int, Counts] = {}
        self.events = EventPump("tcp", lambda data: self.log.feed(data), EVENT.size, EVENT.size,
                                buffer_pages(perf_pages, "perf buffer pages"), threaded=poll, batching=Batching.ALWAYS)
        self._outcomes = True
        self._gen = 0
        self._since = time.time()
        self._history: Deque[float] = collections.deque(maxlen=HISTORY)
        self._lost_prev = 0
        self._last = time.monotonic()

    @property
    def match(self) -> MatchFilter:
        return self.table.match

    # -- ladder -----------------------------------------------------------
    def strategies(self) -> List[ladder.Strategy]:
        bufs = {"auto": (True, False), "ring": (True,), "perf": (False,)}[self.buffer]
        out = []
        for tp in (True, False):
            for ring in bufs:
                buffer = EventBuffer.RING if ring else EventBuffer.PERF
                if tp:
                    hooks = ("sock:inet_sock_set_state", "tcp:tcp_receive_reset")
                    out.append(ladder.Strategy(
                        f"inet_sock_set_state tracepoint, {buffer.value}", HookKind.TRACEPOINT, hooks,
                        functools.partial(self._check_tp, ring), functools.partial(self._load, True, ring),
                        buffer=buffer,
                    ))
                else:
                    hooks = ("tcp_v4_connect", "tcp_v6_connect")
                    out.append(ladder.Strategy(
                        f"tcp_v4/v6_connect kprobes, {buffer.value}", HookKind.KPROBE, hooks,
                        functools.partial(self._check_kprobes, ring), functools.partial(self._load, False, ring),
                        buffer=buffer,
                    ))
        return out

    @staticmethod
    def _check_ring(ring: bool) -> str:
        if ring and system.kernel_version() < (5, 8):
            return f"kernel {platform.release()} has no BPF ring buffer (5.8 and later)"
        return ""

    def _check_tp(self, ring: bool) -> str:
        if not system.tracepoint_exists("sock", "inet_sock_set_state"):
            return "tracepoint sock:inet_sock_set_state not found (kernel before 4.16)"
        return self._check_ring(ring)

    def _check_kprobes(self, ring: bool) -> str:
        ok, why = system.kprobes_available()
        if not ok:
            return why
        headers = system.kernel_headers()
        if not headers.matches_running:
            # This rung reads struct sock: the layout must be this kernel's.
            return f"reads struct sock, which needs headers of the running kernel ({headers.note or 'none found'})"
        gone = system.not_traceable(("tcp_v4_connect", "tcp_v6_connect"))
        if gone:
            return f"kernel function {gone[0]} is not traceable"
        return self._check_ring(ring)

    def _defines(self, tracepoint: bool, ring: bool) -> dict:
        # The rate limit per CPU as a GCRA: one event every gap, a burst of
        # event_burst at once.
        gap_ns = max(1, 1_000_000_000 * (os.cpu_count() or 1) // self.event_rate)
        return {
            "USE_TRACEPOINT": tracepoint,
            "RESET_TP": tracepoint and system.tracepoint_exists("tcp", "tcp_receive_reset"),
            "USE_RINGBUF": ring,
            "RINGBUF_PAGES": self.ring_pages,
            "MAX_PENDING": MAX_PENDING,
            "MAX_AGG": MAX_AGG,
            "NSLOTS": NSLOTS,
            "EVENT_GAP_NS": gap_ns,
            "EVENT_TAU_NS": gap_ns * (self.event_burst - 1),
            "MAX_FILTER_PIDS": MAX_FILTER_PIDS,
            "MAX_FILTER_PORTS": MAX_FILTER_PORTS,
        }

    def _load(self, tracepoint: bool, ring: bool) -> Any:
        def attach(bpf: Any) -> None:
            if not tracepoint:
                for v in ("v4", "v6"):
                    bpf.attach_kprobe(event=f"tcp_{v}_connect".encode(), fn_name=f"bpftop_tcp_{v}_entry".encode())
                    bpf.attach_kretprobe(event=f"tcp_{v}_connect".encode(), fn_name=f"bpftop_tcp_{v}_return".encode())
            self.events.open(bpf, ring)

        return loader.load("tcp", self._defines(tracepoint, ring), attach)

    def _on_loaded(self) -> None:
        assert self._strategy is not None
        self._outcomes = self._strategy.kind is HookKind.TRACEPOINT
        self.log = EventLog(outcomes=self._outcomes, max_events=self.max_events)
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self.ports.bind(self._bpf[b"port_mode"], self._bpf[b"filter_ports"])
        self._gen = 0
        self._baseline()
        self.events.start(self._bpf)

    def _baseline(self, match: Optional[MatchFilter] = None) -> None:
        """Counts start again (a filter changed, or the program loaded): the
        kernel counts into the next generation from now on; the older
        generations' keys are deleted once no program can still be writing
        them, and what the kernel sent before is drained and dropped."""
        bpf = self._bpf
        gen = (self._gen + 1) & 0xFFFFFFFF
        # The next generation's per-CPU counters start from zero: nothing
        # writes them until it begins (the last one of that parity ended
        # two restarts ago).
        counts, spill = bpf[b"counts"], bpf[b"spill"]
        for i in range(NCOUNTS):
            counts[counts.Key((gen & 1) * NCOUNTS + i)] = counts.Leaf()
        for i in range(2):
            spill[spill.Key((gen & 1) * 2 + i)] = spill.Leaf()
        # A fresh burst for the event log on every CPU: connects made under
        # the old filter do not keep the new one's first ones out of it.
        bucket = bpf[b"bucket"]
        bucket[bucket.Key(0)] = bucket.Leaf()
        ctl = bpf[b"ctl"]
        ctl[ctl.Key(0)] = ctl.Leaf(gen)
        system.wait_for_running_programs()
        self._gen = gen
        agg = bpf[b"agg"]
        for key, _ in maps.items(agg):
            if key.gen != gen:
                try:
                    del agg[key]
                except KeyError:
                    pass
        self.events.drain()
        self.table = CountTable(match or self.table.match)
        self._folded.clear()
        self._kept.clear()
        self.log.reset(self.table.match)
        self._since = time.time()
        self._history.clear()
        self._lost_prev = 0
        self._last = time.monotonic()

    def stop(self) -> None:
        self.events.stop()
        super().stop()

    # -- run-time filters -----------------------------------------------------
    def _set_event_filter(self, flt: EventFilter) -> None:
        """``comm`` is a regex searched in the process name, ``addrs``
        destination addresses or networks; applied to each key of the
        kernel's counts and to each event. The counts start again."""
        match = MatchFilter(flt.comm, flt.comm_exclude, flt.addrs, flt.addr_exclude)
        if self._bpf is not None:
            self._baseline(match)
        else:
            self.table = CountTable(match)
            self.log.reset(match)

    # -- reading ----------------------------------------------------------
    def _counters(self) -> Tuple[int, ...]:
        base = (self._gen & 1) * NCOUNTS
        return tuple(maps.percpu_totals(self._bpf[b"counts"])[base:base + NCOUNTS])

    def _counts(self, raw: bytes) -> Counts:
        c = self._values.get(raw)
        if c is None:
            c = parse_value(raw)
        return c

    def _entries(self) -> List[Tuple[Key, Counts]]:
        out = []
        values: Dict[bytes, Counts] = {}
        for k, v in maps.items(self._bpf[b"agg"]):
            key = self._keys(bytes(k))
            if key.gen != self._gen:
                continue
            raw = bytes(v)
            c = values[raw] = self._counts(raw)
            out.append((k, key, c))
        self._keys.forget_others()
        self._values = values
        live = self._fold(out) if len(out) > self.fold_at else [(key, c) for _, key, c in out]
        if not self._folded:
            return live
        # A folded key can come back (its pid reused by a process of the
        # same name and uid, to the same place): one entry, both counts.
        merged = dict(self._folded)
        for key, c in live:
            had = merged.get(key)
            merged[key] = plus(had, c)
        return list(merged.items())

    def _fold(self, entries: List[Tuple[Any, Key, Counts]]) -> List[Tuple[Key, Counts]]:
        """With the kernel's table a quarter full (fold_at), the keys of
        processes that have exited and have no attempt still waiting for its
        outcome move from the kernel to ``_folded`` (their rows stay; past
        max_folded the oldest go into per-IP-version totals), so that
        process churn does not fill the table. A key whose pid is reused by
        a process of the same uid and name connecting to the same place
        between this read and the delete would lose that attempt: the
        delete follows the read at once."""
        table = self._bpf[b"agg"]
        now = time.monotonic_ns()  # bpf_ktime_get_ns()'s clock
        ended = set(procfs.exited({key.pid for _, key, _ in entries}))
        live = []
        for k, key, c in entries:
            settled = (not self._outcomes or c.established + c.refused + c.failed >= c.attempts
                       or now - c.last_ns > SETTLED_NS)
            if key.pid not in ended or not settled:
                live.append((key, c))
                continue
            try:
                del table[k]
            except KeyError:
                pass
            had = self._folded.pop(key, None)
            self._folded[key] = plus(had, c)
        while len(self._folded) > self.max_folded:
            key = next(iter(self._folded))
            c = self._folded.pop(key)
            if self.table.matches(key):
                had = self._kept.get(key.family)
                self._kept[key.family] = plus(had, c)
        return live

    def _spill(self) -> List[Tuple[int, Counts]]:
        table = self._bpf[b"spill"]
        out = []
        for i, family in ((0, 4), (1, 6)):
            percpu = table.getvalue(table.Key((self._gen & 1) * 2 + i))
            c = add_counts(parse_value(bytes(v)) for v in percpu)
            if c.attempts:
                out.append((family, c))
        return out

    def _read(self) -> TcpSnapshot:
        self.events.drain()
        now = time.monotonic()
        interval = now - self._last
        t = self.table.update(self._entries(), self._spill(), sorted(self._kept.items()))
        orphans, lost_c, lost_r = self._counters()
        events, streamed = self.log.take()
        self._history.append(t.connects / interval if interval > 0 else 0.0)
        snap = TcpSnapshot(
            interval_s=interval,
            taken_at=time.time(),
            hook=self.hook,
            since=self._since,
            destinations=t.destinations,
            processes=t.processes,
            events=events,
            connects=t.connects,
            failures=t.failures,
            total_connects=t.total_connects,
            total_failures=t.total_failures,
            families=t.families,
            rate_history=tuple(self._history),
            lost_connects=lost_c,
            lost_results=lost_r,
            lost_new=lost_c + lost_r - self._lost_prev,
            buffer=(EventBuffer.RING if self.events.ring else EventBuffer.PERF).value,
            outcomes=self._outcomes,
            orphan_results=orphans,
            overflow_destinations=t.overflow,
            pid_filter=self.filter.pids,
            pid_exclude=self.filter.exclude,
            port_filter=self.ports.ports,
            port_exclude=self.ports.exclude,
            match_filter=self.table.match.text(),
            outcome_counts=t.outcome_counts,
            latency_hist=t.latency_hist,
            latency_sum_ns=t.latency_sum_ns,
            streamed=streamed,
            not_streamed=t.not_streamed,
        )
        self._lost_prev = lost_c + lost_r
        self._last = now
        return snap
