"""The Cache tab as Prometheus metrics (``bpftop exporter``). The unit of
the counts (pages or calls) is the collector's, in bpftop_collector_info."""

from __future__ import annotations

from typing import Any, List, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..exporter.base import ProcessCount, TabMetrics
from ..model.cache import CacheSnapshot


class CacheMetrics(TabMetrics):
    unit = "pages"
    process_metrics = (("cache_hits", "Page cache hits"), ("cache_misses", "Page cache misses"))

    def __init__(self) -> None:
        self.hits = self.misses = self.dirties = 0
        self.ratio: Optional[float] = None

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: CacheSnapshot = snapshot
        s = snap.system
        self.hits += s.hits
        self.misses += s.misses
        self.dirties += s.dirties
        self.ratio = None if s.read_hit_pct is None else s.read_hit_pct / 100
        out: List[ProcessCount] = []
        for row in snap.rows:
            rs = row.stats
            out += [("cache_hits", row.pid, row.comm, rs.hits), ("cache_misses", row.pid, row.comm, rs.misses)]
        return out

    def families(self, top_n: int) -> List[Metric]:
        out: List[Metric] = []
        for name, help_, value in (
            ("hits", "Reads served by the page cache (cachestat's formula)", self.hits),
            ("misses", "Reads that added pages to the page cache", self.misses),
            ("dirties", "Pages dirtied", self.dirties),
        ):
            m = CounterMetricFamily(f"bpftop_cache_{name}", help_)
            m.add_metric([], value)
            out.append(m)
        if self.ratio is not None:
            g = GaugeMetricFamily("bpftop_cache_read_hit_ratio",
                                  "Share of page cache reads that hit, over the latest interval", unit="ratio")
            g.add_metric([], self.ratio)
            out.append(g)
        return out
