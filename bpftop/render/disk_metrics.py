"""The Disk tab as Prometheus metrics (``bpftop exporter``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from ..exporter.base import Hist, ProcessCount, TabMetrics
from ..model.disk import DiskSnapshot
from ..safetext import safe


@dataclass
class _OpTotals:
    ios: int = 0
    bytes: int = 0
    hist: Hist = field(default_factory=Hist)


class DiskMetrics(TabMetrics):
    unit = "requests"

    def __init__(self) -> None:
        self.ops: Dict[Tuple[str, str], _OpTotals] = {}
        self.lost = 0

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: DiskSnapshot = snapshot
        for row in snap.rows:
            for op in row.ops:
                t = self.ops.setdefault((safe(row.disk), op.op), _OpTotals())
                t.ios += max(0, op.ios)
                t.bytes += max(0, op.bytes)
                t.hist.add(op.hist, op.total_ns)
        self.lost += max(0, snap.lost or 0)
        return []

    def families(self, top_n: int) -> List[Metric]:
        ios = CounterMetricFamily("bpftop_disk_ios", "Completed block I/O requests", labels=["disk", "op"])
        nbytes = CounterMetricFamily("bpftop_disk_bytes", "Bytes moved by completed block I/O requests",
                                     labels=["disk", "op"], unit="bytes")
        latency = HistogramMetricFamily(
            "bpftop_disk_latency_seconds",
            "Block I/O latency of the completions whose start was seen (log2 microsecond buckets)",
            labels=["disk", "op"], unit="seconds")
        for (disk, op), t in sorted(self.ops.items()):
            ios.add_metric([disk, op], t.ios)
            nbytes.add_metric([disk, op], t.bytes)
            latency.add_metric([disk, op], t.hist.buckets(), t.hist.sum_ns / 1e9)
        lost = CounterMetricFamily("bpftop_disk_lost_completions",
                                   "Completions the kernel ran no bpftop program for (its BPF recursion guard)")
        lost.add_metric([], self.lost)
        return [ios, nbytes, latency, lost]
