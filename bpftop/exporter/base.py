"""What every tab's metrics share: the interface a tab's metrics module
(``render/<tab>_metrics.py``, named in the registry) implements, and log2
latency histograms as Prometheus buckets.

A tab's metrics fold each interval's snapshot into totals that live as long
as the exporter, so a collector switched off and on, or restarted after a
failure, never sends a counter backwards.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, List, Sequence, Tuple

from prometheus_client.core import Metric

from ..model.disk import NSLOTS, slot_high_us

# Per-process counts of one interval: (metric name, pid, comm, count); the
# exporter keeps them only with per-process series switched on.
ProcessCount = Tuple[str, int, str, int]


@dataclass
class Hist:
    """A log2 microsecond histogram (model/disk.py's slots) and its sum."""

    slots: List[int] = field(default_factory=lambda: [0] * NSLOTS)
    sum_ns: int = 0

    def add(self, slots: Sequence[int], sum_ns: int) -> None:
        for i, n in enumerate(slots[:NSLOTS]):
            self.slots[i] += max(0, n)
        self.sum_ns += max(0, sum_ns)

    @property
    def count(self) -> int:
        return sum(self.slots)

    def buckets(self) -> List[Tuple[str, float]]:
        """Cumulative (le, count) pairs in seconds. The last slot is
        open-ended (anything slower is filed there), so it is +Inf."""
        out: List[Tuple[str, float]] = []
        running = 0
        for slot in range(NSLOTS - 1):
            running += self.slots[slot]
            out.append((repr(slot_high_us(slot) / 1e6), running))
        out.append(("+Inf", running + self.slots[NSLOTS - 1]))
        return out


def bump(counts: dict, key: Any, n: int) -> None:
    """Add an interval's count; a negative one (a counter that restarted)
    adds nothing."""
    if n > 0:
        counts[key] = counts.get(key, 0) + n


class TabMetrics(abc.ABC):
    """One tab's exported numbers. ``fold`` runs in the collection loop's
    thread, ``families`` at a scrape; the exporter serialises them."""

    # What one count is, where the collector's rung does not declare it.
    unit = ""
    # Per-process metric names this tab reports, with their HELP.
    process_metrics: Tuple[Tuple[str, str], ...] = ()

    @abc.abstractmethod
    def fold(self, snapshot: Any) -> List[ProcessCount]:
        """Add one interval; returns its per-process counts."""

    @abc.abstractmethod
    def families(self, top_n: int) -> List[Metric]:
        """The tab's metric families (``top_n`` bounds any label set that
        grows with the workload)."""
