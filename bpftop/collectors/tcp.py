"""TCP collector: outgoing connect attempts (like bcc's tcpconnect and
tcpconnlat at once), with their outcome and latency, per IP version.

The kernel program sends one event per attempt and one per outcome through
a ring buffer (perf buffer on kernels without one). A poll thread owned by
the collector drains it continuously into an ``Aggregator``; ``collect()``
asks that thread to drain once more, so everything the kernel sent before
the call is in the snapshot. Lost events are counted in the kernel, per
kind, and shown.

Filters: pid and destination port in BPF maps (changed at run time, never
recompiled); process name regex and destination networks in Python
(``set_event_filter``), applied to each attempt as it arrives. Changing any
filter restarts the counts.
"""

from __future__ import annotations

import functools
import platform
import time
from typing import Any, List, Sequence, Tuple

from ..bpf import ladder, loader, maps, system
from ..model import EventBuffer, HookKind
from ..model.tcp import TcpSnapshot
from .base import Collector
from .capabilities import Capabilities, EventFilter
from .event_pump import EventPump, buffer_pages
from .keyfilter import KeyFilter
from .pidfilter import PidFilter
from .tcp_events import EVENT, MAX_EVENTS, Aggregator, MatchFilter

MAX_PENDING = 65536
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
    ) -> None:
        """``buffer``: "ring", "perf" or "auto" (ring, perf where the kernel
        has none). ``poll=False`` drains only in ``collect()`` (tests use it
        with a small buffer to make events get lost on purpose)."""
        super().__init__()
        if buffer not in BUFFERS:
            raise ValueError(f"buffer must be one of {', '.join(BUFFERS)}, not {buffer!r}")
        self.buffer = buffer
        self.ring_pages = buffer_pages(ring_pages, "ring buffer pages")
        self.max_events = max_events
        self.filter = self.key_filters["pid"] = PidFilter(pids)
        self.ports = self.key_filters["port"] = PortFilter(ports, port_exclude)
        self.agg = Aggregator(max_events=max_events)
        self.events = EventPump("tcp", lambda data: self.agg.feed(data), EVENT.size, EVENT.size,
                                buffer_pages(perf_pages, "perf buffer pages"), threaded=poll)
        self._outcomes = True
        self._lost_base = (0, 0)
        self._lost_prev = 0
        self._last = time.monotonic()

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
        return {
            "USE_TRACEPOINT": tracepoint,
            "RESET_TP": tracepoint and system.tracepoint_exists("tcp", "tcp_receive_reset"),
            "USE_RINGBUF": ring,
            "RINGBUF_PAGES": self.ring_pages,
            "MAX_PENDING": MAX_PENDING,
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
        self.agg = Aggregator(outcomes=self._outcomes, max_events=self.max_events)
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self.ports.bind(self._bpf[b"port_mode"], self._bpf[b"filter_ports"])
        self._baseline()
        self.events.start(self._bpf)

    def _baseline(self) -> None:
        """Counts start again (after a filter change): what the kernel sent
        under the old filter is drained and dropped."""
        self.events.drain()
        self.agg.reset()
        self._lost_base = self._read_lost()
        self._lost_prev = 0
        self._last = time.monotonic()

    def stop(self) -> None:
        self.events.stop()
        super().stop()

    # -- run-time filters -----------------------------------------------------
    def _set_event_filter(self, flt: EventFilter) -> None:
        """``comm`` is a regex searched in the process name, ``addrs``
        destination addresses or networks; applied to each attempt as it
        arrives. What the kernel sent under the old filter is drained first."""
        match = MatchFilter(flt.comm, flt.comm_exclude, flt.addrs, flt.addr_exclude)
        if self._bpf is not None:
            self.events.drain()
        self.agg.set_match(match)
        if self._bpf is not None:
            self._lost_base = self._read_lost()
            self._lost_prev = 0
            self._last = time.monotonic()

    # -- reading ----------------------------------------------------------
    def _read_lost(self) -> Tuple[int, int]:
        if self._bpf is None:
            return (0, 0)
        table = self._bpf[b"lost"]
        return maps.percpu_total(table, 0), maps.percpu_total(table, 1)

    def _read(self) -> TcpSnapshot:
        self.events.drain()
        now = time.monotonic()
        lost = self._read_lost()
        lost_c, lost_r = lost[0] - self._lost_base[0], lost[1] - self._lost_base[1]
        t = self.agg.take(now - self._last)
        snap = TcpSnapshot(
            interval_s=now - self._last,
            taken_at=time.time(),
            hook=self.hook,
            since=t.since,
            destinations=t.destinations,
            processes=t.processes,
            events=t.events,
            connects=t.connects,
            failures=t.failures,
            total_connects=t.total_connects,
            total_failures=t.total_failures,
            families=t.families,
            rate_history=t.rate_history,
            lost_connects=lost_c,
            lost_results=lost_r,
            lost_new=lost_c + lost_r - self._lost_prev,
            buffer=(EventBuffer.RING if self.events.ring else EventBuffer.PERF).value,
            outcomes=self._outcomes,
            orphan_results=t.orphan_results,
            overflow_destinations=t.overflow_destinations,
            pid_filter=self.filter.pids,
            pid_exclude=self.filter.exclude,
            port_filter=self.ports.ports,
            port_exclude=self.ports.exclude,
            match_filter=self.agg.match.text(),
            outcome_counts=t.outcome_counts,
            latency_hist=t.latency_hist,
            latency_sum_ns=t.latency_sum_ns,
        )
        self._lost_prev = lost_c + lost_r
        self._last = now
        return snap
