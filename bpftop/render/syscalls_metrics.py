"""The Syscalls tab as Prometheus metrics (``bpftop exporter``)."""

from __future__ import annotations

from typing import Any, Dict, List

from prometheus_client.core import CounterMetricFamily, Metric

from ..exporter.base import ProcessCount, TabMetrics, bump
from ..model.syscalls import SyscallsSnapshot
from ..safetext import safe


class SyscallsMetrics(TabMetrics):
    unit = "calls"
    process_metrics = (("syscalls", "System calls"),)

    def __init__(self) -> None:
        self.calls: Dict[str, int] = {}
        self.errors: Dict[str, int] = {}
        self.seconds: Dict[str, float] = {}  # only while latency is measured
        self.timed: Dict[str, int] = {}  # the calls ``seconds`` is over (entry seen)

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: SyscallsSnapshot = snapshot
        for row in snap.rows:
            name = safe(row.syscall)
            bump(self.calls, name, row.count)
            bump(self.errors, name, row.errors)
            if row.total_ns is not None and row.total_ns > 0:
                self.seconds[name] = self.seconds.get(name, 0.0) + row.total_ns / 1e9
                bump(self.timed, name, row.timed)
        return [("syscalls", p.pid, p.comm, p.count) for p in snap.processes]

    def families(self, top_n: int) -> List[Metric]:
        calls = CounterMetricFamily("bpftop_syscalls", "System calls made, per system call", labels=["syscall"])
        errors = CounterMetricFamily("bpftop_syscall_errors", "System calls that returned an error",
                                     labels=["syscall"])
        for name, n in sorted(self.calls.items()):
            calls.add_metric([name], n)
            errors.add_metric([name], self.errors.get(name, 0))
        out: List[Metric] = [calls, errors]
        if self.seconds:
            secs = CounterMetricFamily("bpftop_syscall_duration_seconds",
                                       "Time spent in system calls (latency on)", labels=["syscall"], unit="seconds")
            timed = CounterMetricFamily("bpftop_syscall_timed_calls",
                                        "Calls whose time is in bpftop_syscall_duration_seconds_total (their entry "
                                        "was seen): the mean is one over the other", labels=["syscall"])
            for name, s in sorted(self.seconds.items()):
                secs.add_metric([name], s)
                timed.add_metric([name], self.timed.get(name, 0))
            out += [secs, timed]
        return out
