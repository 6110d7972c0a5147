"""The exporter's metric families, built at each scrape from the totals the
collection loop folded in and from each collector's status.

Names follow Prometheus's conventions: a ``bpftop_`` prefix, base units
(seconds, bytes), ``_total`` on counters, histograms in seconds with the
log2 microsecond slots' upper bounds as ``le``. Per-destination and
per-process series are limited to the top N; per-process ones are off
unless asked for.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

from ..bpf.stats import ProgramStats, program_stats
from ..collectors.base import Collector
from ..loop import Snapshots
from ..model import CollectorState, CollectorStatus
from ..safetext import safe
from .base import ProcessCount, TabMetrics

# States in which a collector's programs are in the kernel (a failed read
# leaves them attached; the loop retries).
ATTACHED = (CollectorState.RUNNING, CollectorState.ERROR)
# Processes kept while they compete for the top N: bounds memory under
# process churn, far above any sensible N.
PROCESS_POOL = 4096


class ProcessTotals:
    """Per-process counters (opt-in), the top N by activity exported."""

    def __init__(self) -> None:
        self.comms: Dict[int, str] = {}
        self.counts: Dict[int, Dict[str, int]] = {}

    def add(self, counts: Iterable[ProcessCount]) -> None:
        for metric, pid, comm, n in counts:
            if n <= 0:
                continue
            mine = self.counts.get(pid)
            if mine is None:
                if len(self.counts) >= PROCESS_POOL:
                    quietest = min(self.counts, key=lambda p: sum(self.counts[p].values()))
                    del self.counts[quietest], self.comms[quietest]
                mine = self.counts[pid] = {}
            self.comms[pid] = safe(comm)
            mine[metric] = mine.get(metric, 0) + n

    def top(self, n: int) -> List[int]:
        return sorted(self.counts, key=lambda p: (-sum(self.counts[p].values()), p))[:n]


class ProgramTotals:
    """Run counts and times of each collector's programs, kept monotonic:
    a program loaded anew (a collector restarted) starts at zero in the
    kernel, so what the old one counted is carried as a base."""

    def __init__(self) -> None:
        self.base: Dict[Tuple[str, str], Tuple[int, int]] = {}
        self.last: Dict[Tuple[str, str], Tuple[int, int, int]] = {}  # prog_id, runs, ns

    def update(self, tab: str, programs: Sequence[Tuple[str, Optional[ProgramStats]]]) -> None:
        for name, stats in programs:
            if stats is None:
                continue
            key = (tab, name)
            last = self.last.get(key)
            if last is not None and last[0] != stats.prog_id:
                runs, ns = self.base.get(key, (0, 0))
                self.base[key] = (runs + last[1], ns + last[2])
            self.last[key] = (stats.prog_id, stats.run_cnt, stats.run_time_ns)

    def totals(self) -> Dict[Tuple[str, str], Tuple[int, int]]:
        out = {}
        for key, (_pid, runs, ns) in self.last.items():
            b_runs, b_ns = self.base.get(key, (0, 0))
            out[key] = (b_runs + runs, b_ns + ns)
        return out


class ExporterMetrics(PromCollector):
    """The sink of the collection loop (``interval``, ``status``) and the
    prometheus_client collector that turns what it kept into families.
    ``tab_metrics`` holds each running tab's metrics (from the registry)."""

    def __init__(self, collectors: Sequence[Collector[Any]], tab_metrics: Mapping[str, TabMetrics], top_n: int,
                 per_process: bool, read_costs: Callable[[], Mapping[str, Tuple[int, float, int]]] = dict) -> None:
        self.collectors = list(collectors)
        self.tab_metrics = dict(tab_metrics)
        self.top_n = top_n
        self.per_process = per_process
        self.processes = ProcessTotals()
        self.programs = ProgramTotals()
        self.read_costs = read_costs
        self.taken_at: Dict[str, float] = {}
        self._lock = threading.Lock()
        self._intervals = 0
        self._scrape_s = 0.0

    # -- the collection loop's side ----------------------------------------
    def interval(self, snapshots: Snapshots) -> None:
        with self._lock:
            for tab, snap in snapshots:
                counts = self.tab_metrics[tab].fold(snap)
                if self.per_process:
                    self.processes.add(counts)
                taken = getattr(snap, "taken_at", None)
                if isinstance(taken, float):
                    self.taken_at[tab] = taken
            self._intervals += 1

    def status(self, status: CollectorStatus) -> None:
        """Status changes show at the next scrape, read from the collectors;
        a collector just up has programs to count from now on."""
        if status.state in ATTACHED:
            self.refresh_programs()

    def refresh_programs(self) -> None:
        # Only attached collectors: one compiling holds its lock for seconds.
        found = [(c.tab, [(name, program_stats(fd)) for name, fd in c.programs()])
                 for c in self.collectors if c.status.state in ATTACHED]
        with self._lock:
            for tab, programs in found:
                self.programs.update(tab, programs)

    # -- prometheus_client's side --------------------------------------------
    def describe(self) -> Iterable[Metric]:
        return []  # families vary with what runs: no checks at registration

    def collect(self) -> Iterable[Metric]:
        began = time.monotonic()
        self.refresh_programs()
        with self._lock:
            families = self._collector_families()
            for metrics in self.tab_metrics.values():
                families += metrics.families(self.top_n)
            if self.per_process:
                families += self._process_families()
            families += self._cost_families()
            self._scrape_s = time.monotonic() - began
        return families

    def _collector_families(self) -> List[Metric]:
        attached = GaugeMetricFamily("bpftop_collector_attached",
                                     "1 while the collector's BPF programs are attached, else 0", labels=["tab"])
        info = InfoMetricFamily("bpftop_collector",
                                "Each collector's hook, what its counts are in, and its state", labels=["tab"])
        failure = InfoMetricFamily("bpftop_collector_failure",
                                   "Why a collector is not attached, or why its last read failed", labels=["tab"])
        taken = GaugeMetricFamily("bpftop_collector_last_collection_timestamp_seconds",
                                  "When the collector's latest interval ended (Unix time)", labels=["tab"],
                                  unit="seconds")
        for c in self.collectors:
            status = c.status
            attached.add_metric([c.tab], 1.0 if status.state in ATTACHED else 0.0)
            chosen = status.chosen
            declared = chosen.unit.value if chosen is not None and chosen.unit is not None else ""
            unit = declared or self.tab_metrics[c.tab].unit
            info.add_metric([c.tab], {"hook": safe(c.hook), "unit": unit, "state": status.state.value})
            if status.state in (CollectorState.FAILED, CollectorState.ERROR):
                failure.add_metric([c.tab], {"reason": safe(status.message or status.state.value)})
            when = self.taken_at.get(c.tab)
            if when is not None:
                taken.add_metric([c.tab], when)
        runs = CounterMetricFamily("bpftop_program_runs", "Times the kernel ran each of bpftop's BPF programs",
                                   labels=["tab", "program"])
        run_s = CounterMetricFamily("bpftop_program_run_seconds",
                                    "Time the kernel spent in each of bpftop's BPF programs (counted while BPF "
                                    "run-time statistics are on, which the exporter asks for)",
                                    labels=["tab", "program"], unit="seconds")
        for (tab, name), (count, ns) in sorted(self.programs.totals().items()):
            runs.add_metric([tab, safe(name)], count)
            run_s.add_metric([tab, safe(name)], ns / 1e9)
        return [attached, info, failure, taken, runs, run_s]

    def _process_families(self) -> List[Metric]:
        top = self.processes.top(self.top_n)
        out: List[Metric] = []
        for metrics in self.tab_metrics.values():
            for name, help_ in metrics.process_metrics:
                fam = CounterMetricFamily(f"bpftop_process_{name}", f"{help_} of the {self.top_n} busiest processes",
                                          labels=["pid", "comm"])
                for pid in top:
                    fam.add_metric([str(pid), self.processes.comms[pid]], self.processes.counts[pid].get(name, 0))
                out.append(fam)
        return out

    def _cost_families(self) -> List[Metric]:
        reads = CounterMetricFamily("bpftop_collection_reads", "Reads of each collector's maps", labels=["tab"])
        secs = CounterMetricFamily("bpftop_collection_seconds", "Time spent reading each collector",
                                   labels=["tab"], unit="seconds")
        errs = CounterMetricFamily("bpftop_collection_errors", "Reads of a collector that failed", labels=["tab"])
        for tab, (n, s, e) in sorted(self.read_costs().items()):
            reads.add_metric([tab], n)
            secs.add_metric([tab], s)
            errs.add_metric([tab], e)
        intervals = CounterMetricFamily("bpftop_collection_intervals", "Intervals the collection loop handed over")
        intervals.add_metric([], self._intervals)
        scrape = GaugeMetricFamily("bpftop_scrape_duration_seconds", "How long the previous scrape took to build",
                                   unit="seconds")
        scrape.add_metric([], self._scrape_s)
        return [reads, secs, errs, intervals, scrape]
