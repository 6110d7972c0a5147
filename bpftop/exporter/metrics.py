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

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PromCollector

from ..bpf.stats import program_stats
from ..collectors.base import Collector
from ..loop import Snapshots
from ..model import CollectorState, CollectorStatus
from ..model.disk import NSLOTS, slot_high_us
from ..safetext import safe
from .totals import Hist, Totals

# States in which a collector's programs are in the kernel (a failed read
# leaves them attached; the loop retries).
ATTACHED = (CollectorState.RUNNING, CollectorState.ERROR)
FAMILY = {4: "ipv4", 6: "ipv6"}
# What one count is, where a collector's rungs do not say (the cache's do:
# pages or calls).
UNITS = {"syscalls": "calls", "disk": "requests", "tcp": "connects", "cache": "pages"}


def buckets(hist: Hist) -> List[Tuple[str, float]]:
    """Cumulative (le, count) pairs in seconds; the last slot is open-ended
    (model/disk.py files anything slower there), so it is +Inf."""
    out: List[Tuple[str, float]] = []
    running = 0
    for slot in range(NSLOTS - 1):
        running += hist.slots[slot]
        out.append((repr(slot_high_us(slot) / 1e6), running))
    out.append(("+Inf", running + hist.slots[NSLOTS - 1]))
    return out


class ProgramTotals:
    """Run counts and times of each collector's programs, kept monotonic:
    a program loaded anew (a collector restarted) starts at zero in the
    kernel, so what the old one counted is carried as a base."""

    def __init__(self) -> None:
        self.base: Dict[Tuple[str, str], Tuple[int, int]] = {}
        self.last: Dict[Tuple[str, str], Tuple[int, int, int]] = {}  # prog_id, runs, ns

    def update(self, tab: str, programs: Sequence[Tuple[str, int]]) -> None:
        for name, fd in programs:
            stats = program_stats(fd)
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
    prometheus_client collector that turns what it kept into families."""

    def __init__(self, collectors: Sequence[Collector[Any]], top_n: int, per_process: bool,
                 read_costs: Callable[[], Mapping[str, Tuple[int, float, int]]] = dict) -> None:
        self.collectors = list(collectors)
        self.top_n = top_n
        self.totals = Totals(per_process)
        self.programs = ProgramTotals()
        self.read_costs = read_costs
        self.stats_note = ""  # why program run times are not counted, if they are not
        self._lock = threading.Lock()
        self._intervals = 0
        self._scrape_s = 0.0

    # -- the collection loop's side ----------------------------------------
    def interval(self, snapshots: Snapshots) -> None:
        with self._lock:
            for tab, snap in snapshots:
                self.totals.fold(tab, snap)
            self._intervals += 1

    def status(self, status: CollectorStatus) -> None:
        """Status changes show at the next scrape, read from the collectors;
        a collector just up has programs to count from now on."""
        if status.state in ATTACHED:
            self.refresh_programs()

    def refresh_programs(self) -> None:
        # Only attached collectors: one compiling holds its lock for seconds.
        found = [(c.tab, c.programs()) for c in self.collectors if c.status.state in ATTACHED]
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
            families = self._families()
            self._scrape_s = time.monotonic() - began
        return families

    def _families(self) -> List[Metric]:
        out: List[Metric] = []
        out += self._collector_families()
        t = self.totals
        if "syscalls" in self._tabs:
            out += self._syscall_families(t)
        if "disk" in self._tabs:
            out += self._disk_families(t)
        if "tcp" in self._tabs:
            out += self._tcp_families(t)
        if "cache" in self._tabs:
            out += self._cache_families(t)
        if t.per_process:
            out += self._process_families(t)
        out += self._cost_families()
        return out

    @property
    def _tabs(self) -> List[str]:
        return [c.tab for c in self.collectors]

    def _collector_families(self) -> List[Metric]:
        attached = GaugeMetricFamily("bpftop_collector_attached",
                                     "1 while the collector's BPF programs are attached, else 0", labels=["tab"])
        info = InfoMetricFamily("bpftop_collector", "The hook each collector attached with and what its counts are in",
                                labels=["tab"])
        failure = InfoMetricFamily("bpftop_collector_failure",
                                   "Why a collector is not attached or its last read failed", labels=["tab"])
        taken = GaugeMetricFamily("bpftop_collector_last_collection_timestamp_seconds",
                                  "When the collector's latest interval ended (Unix time)", labels=["tab"],
                                  unit="seconds")
        for c in self.collectors:
            status = c.status
            attached.add_metric([c.tab], 1.0 if status.state in ATTACHED else 0.0)
            chosen = status.chosen
            unit = chosen.unit.value if chosen is not None and chosen.unit is not None else UNITS.get(c.tab, "")
            info.add_metric([c.tab], {"hook": safe(c.hook or (chosen.label if chosen else "")), "unit": unit,
                                      "state": status.state.value})
            if status.state in (CollectorState.FAILED, CollectorState.ERROR):
                failure.add_metric([c.tab], {"reason": safe(status.message or status.state.value)})
            when = self.totals.taken_at.get(c.tab)
            if when is not None:
                taken.add_metric([c.tab], when)
        runs = CounterMetricFamily("bpftop_program_runs", "Times the kernel ran each of bpftop's BPF programs",
                                   labels=["tab", "program"])
        run_s = CounterMetricFamily("bpftop_program_run_seconds",
                                    "Time the kernel spent in each BPF program (counted while BPF statistics "
                                    "are enabled)", labels=["tab", "program"], unit="seconds")
        for (tab, name), (count, ns) in sorted(self.programs.totals().items()):
            runs.add_metric([tab, safe(name)], count)
            run_s.add_metric([tab, safe(name)], ns / 1e9)
        return [attached, info, failure, taken, runs, run_s]

    def _syscall_families(self, t: Totals) -> List[Metric]:
        calls = CounterMetricFamily("bpftop_syscalls", "System calls made, per system call", labels=["syscall"])
        errors = CounterMetricFamily("bpftop_syscall_errors", "System calls that returned an error",
                                     labels=["syscall"])
        for name, n in sorted(t.syscalls.items()):
            calls.add_metric([safe(name)], n)
        for name, n in sorted(t.syscall_errors.items()):
            errors.add_metric([safe(name)], n)
        out: List[Metric] = [calls, errors]
        if t.syscall_seconds:
            secs = CounterMetricFamily("bpftop_syscall_duration_seconds",
                                       "Time spent in system calls (with latency on)", labels=["syscall"],
                                       unit="seconds")
            for name, s in sorted(t.syscall_seconds.items()):
                secs.add_metric([safe(name)], s)
            out.append(secs)
        return out

    def _disk_families(self, t: Totals) -> List[Metric]:
        ios = CounterMetricFamily("bpftop_disk_ios", "Completed block I/O requests", labels=["disk", "op"])
        nbytes = CounterMetricFamily("bpftop_disk_bytes", "Bytes moved by completed block I/O", labels=["disk", "op"],
                                     unit="bytes")
        latency = HistogramMetricFamily("bpftop_disk_latency_seconds",
                                        "Block I/O latency of completions whose start was seen (log2 buckets)",
                                        labels=["disk", "op"], unit="seconds")
        for (disk, op), d in sorted(t.disk.items()):
            ios.add_metric([disk, op], d.ios)
            nbytes.add_metric([disk, op], d.bytes)
            latency.add_metric([disk, op], buckets(d.hist), d.hist.sum_ns / 1e9)
        lost = CounterMetricFamily("bpftop_disk_lost_completions",
                                   "Completions the kernel did not run bpftop's program for (its recursion guard)")
        lost.add_metric([], t.disk_lost)
        return [ios, nbytes, latency, lost]

    def _tcp_families(self, t: Totals) -> List[Metric]:
        attempts = CounterMetricFamily("bpftop_tcp_connect_attempts", "Outgoing TCP connect attempts",
                                       labels=["family"])
        for fam, n in sorted(t.tcp_attempts.items()):
            attempts.add_metric([FAMILY.get(fam, str(fam))], n)
        outcomes = CounterMetricFamily("bpftop_tcp_connects", "Outgoing TCP connects by how they ended",
                                       labels=["family", "outcome"])
        for (fam, result), n in sorted(t.tcp_outcomes.items()):
            outcomes.add_metric([FAMILY.get(fam, str(fam)), result], n)
        latency = HistogramMetricFamily("bpftop_tcp_connect_latency_seconds",
                                        "Time from a connect attempt to its outcome (log2 buckets)", unit="seconds")
        latency.add_metric([], buckets(t.tcp_latency), t.tcp_latency.sum_ns / 1e9)
        dests = CounterMetricFamily("bpftop_tcp_destination_connect_attempts",
                                    f"Connect attempts to the top {self.top_n} destinations",
                                    labels=["family", "daddr", "dport"])
        for (fam, daddr, dport), n in t.top_destinations(self.top_n):
            dests.add_metric([FAMILY.get(fam, str(fam)), safe(daddr), str(dport)], n)
        lost = CounterMetricFamily("bpftop_tcp_lost_events", "Connect events the buffer had no room for")
        lost.add_metric([], t.tcp_lost)
        return [attempts, outcomes, latency, dests, lost]

    def _cache_families(self, t: Totals) -> List[Metric]:
        out: List[Metric] = []
        for key, help_ in (("hits", "Page cache reads served from the cache (cachestat's formula)"),
                           ("misses", "Page cache reads that added pages"),
                           ("dirties", "Pages dirtied")):
            m = CounterMetricFamily(f"bpftop_cache_{key}", help_ + "; unit in bpftop_collector_info{tab=\"cache\"}")
            m.add_metric([], t.cache[key])
            out.append(m)
        ratio: Optional[float] = t.cache_read_hit_ratio
        if ratio is not None:
            g = GaugeMetricFamily("bpftop_cache_read_hit_ratio", "Share of page cache reads that hit, latest interval",
                                  unit="ratio")
            g.add_metric([], ratio)
            out.append(g)
        return out

    def _process_families(self, t: Totals) -> List[Metric]:
        top = t.top_processes(self.top_n)
        calls = CounterMetricFamily("bpftop_process_syscalls", f"System calls of the top {self.top_n} processes",
                                    labels=["pid", "comm"])
        conns = CounterMetricFamily("bpftop_process_tcp_connect_attempts",
                                    f"Connect attempts of the top {self.top_n} processes", labels=["pid", "comm"])
        hits = CounterMetricFamily("bpftop_process_cache_hits", f"Page cache hits of the top {self.top_n} processes",
                                   labels=["pid", "comm"])
        misses = CounterMetricFamily("bpftop_process_cache_misses",
                                     f"Page cache misses of the top {self.top_n} processes", labels=["pid", "comm"])
        for pid, p in top:
            labels = [str(pid), p.comm]
            calls.add_metric(labels, p.syscalls)
            conns.add_metric(labels, p.connects)
            hits.add_metric(labels, p.cache_hits)
            misses.add_metric(labels, p.cache_misses)
        return [calls, conns, hits, misses]

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
