"""The TCP tab as Prometheus metrics (``bpftop exporter``).

The snapshot's outcome counts and latency histogram run since its
collector's counts (re)started (``since``); each interval adds what is new
since the previous snapshot, so a restart adds its counts from zero again
and the exported counters keep going up.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from ..exporter.base import Hist, ProcessCount, TabMetrics, bump
from ..model.tcp import TcpSnapshot
from ..safetext import safe

FAMILY = {4: "ipv4", 6: "ipv6"}
# Destinations kept while they compete for the top N: bounds memory when
# connects go to ever new addresses.
DESTINATION_POOL = 16384


class TcpMetrics(TabMetrics):
    unit = "connects"
    process_metrics = (("tcp_connect_attempts", "Outgoing TCP connect attempts"),)

    def __init__(self) -> None:
        self.attempts: Dict[int, int] = {}
        self.outcomes: Dict[Tuple[int, str], int] = {}
        self.latency = Hist()
        self.destinations: Dict[Tuple[int, str, int], int] = {}
        self.lost = 0
        self.not_streamed = 0
        self._prev_not_streamed = 0
        self._since: Optional[float] = None
        self._prev_fam: Dict[int, int] = {}
        self._prev_out: Dict[Tuple[int, str], int] = {}
        self._prev_hist: Tuple[int, ...] = ()
        self._prev_sum = 0

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: TcpSnapshot = snapshot
        if snap.since != self._since:
            self._since = snap.since
            self._prev_fam, self._prev_out, self._prev_hist, self._prev_sum = {}, {}, (), 0
            self._prev_not_streamed = 0
        fam = {f.family: f.count for f in snap.families}
        for family, count in fam.items():
            bump(self.attempts, family, count - self._prev_fam.get(family, 0))
        out = {(o.family, o.result): o.count for o in snap.outcome_counts}
        for key, count in out.items():
            bump(self.outcomes, key, count - self._prev_out.get(key, 0))
        prev = self._prev_hist or (0,) * len(snap.latency_hist)
        self.latency.add([a - b for a, b in zip(snap.latency_hist, prev)], snap.latency_sum_ns - self._prev_sum)
        self._prev_fam, self._prev_out = fam, out
        self._prev_hist, self._prev_sum = snap.latency_hist, snap.latency_sum_ns
        for d in snap.destinations:
            dest = (d.family, safe(d.daddr), d.dport)
            if d.new > 0 and dest not in self.destinations and len(self.destinations) >= DESTINATION_POOL:
                del self.destinations[min(self.destinations, key=self.destinations.__getitem__)]
            bump(self.destinations, dest, d.new)
        self.lost += max(0, snap.lost_new)
        self.not_streamed += max(0, snap.not_streamed - self._prev_not_streamed)
        self._prev_not_streamed = snap.not_streamed
        return [("tcp_connect_attempts", p.pid, p.comm, p.new) for p in snap.processes if p.new > 0]

    def families(self, top_n: int) -> List[Metric]:
        attempts = CounterMetricFamily("bpftop_tcp_connect_attempts", "Outgoing TCP connect attempts",
                                       labels=["family"])
        for family, n in sorted(self.attempts.items()):
            attempts.add_metric([FAMILY.get(family, str(family))], n)
        outcomes = CounterMetricFamily("bpftop_tcp_connects",
                                       "Outgoing TCP connects by outcome (established, refused, failed)",
                                       labels=["family", "outcome"])
        for (family, result), n in sorted(self.outcomes.items()):
            outcomes.add_metric([FAMILY.get(family, str(family)), result], n)
        latency = HistogramMetricFamily("bpftop_tcp_connect_latency_seconds",
                                        "Time from a connect attempt to its outcome (log2 microsecond buckets)",
                                        unit="seconds")
        latency.add_metric([], self.latency.buckets(), self.latency.sum_ns / 1e9)
        dests = CounterMetricFamily("bpftop_tcp_destination_connect_attempts",
                                    f"Connect attempts to each of the {top_n} busiest destinations",
                                    labels=["family", "daddr", "dport"])
        top = sorted(self.destinations.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
        for (family, daddr, dport), n in top:
            dests.add_metric([FAMILY.get(family, str(family)), daddr, str(dport)], n)
        lost = CounterMetricFamily("bpftop_tcp_lost_events", "Connect events the buffer had no room for")
        lost.add_metric([], self.lost)
        unsent = CounterMetricFamily("bpftop_tcp_events_not_streamed",
                                     "Connect attempts counted but not sent as events (the event log's rate limit)")
        unsent.add_metric([], self.not_streamed)
        return [attempts, outcomes, latency, dests, lost, unsent]
