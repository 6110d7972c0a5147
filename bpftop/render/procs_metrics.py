"""The Processes tab as Prometheus metrics (``bpftop exporter``): counters
of execs, exits, forks, opens (and failed ones) and signals from the
kernel's per-process counts, each interval's added to the last."""

from __future__ import annotations

from typing import Any, Dict, List

from prometheus_client.core import CounterMetricFamily, Metric

from ..exporter.base import ProcessCount, TabMetrics, bump
from ..model.procs import ProcsSnapshot

KINDS = (
    ("execs", "Successful execs (sched_process_exec)"),
    ("exits", "Process exits (the main thread's)"),
    ("forks", "New processes (not threads)"),
    ("opens", "open, openat and openat2 calls"),
    ("open_failures", "open, openat and openat2 calls that returned an error"),
    ("signals", "Signals generated (kill, tgkill, SIGCHLD, faults...)"),
)


class ProcsMetrics(TabMetrics):
    unit = "events"
    process_metrics = (("procs_events", "Execs, exits, forks, opens and signals sent and received, per process"),)

    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}
        self.lost = 0

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: ProcsSnapshot = snapshot
        for kind, n in (("execs", snap.n_execs), ("exits", snap.n_exits), ("forks", snap.n_forks),
                        ("opens", snap.n_opens), ("open_failures", snap.n_open_fails), ("signals", snap.n_signals)):
            bump(self.counts, kind, n)
        self.lost += max(0, snap.lost_new)
        return [("procs_events", p.pid, p.comm, p.new) for p in snap.processes if p.new > 0]

    def families(self, top_n: int) -> List[Metric]:
        out: List[Metric] = []
        for kind, help_ in KINDS:
            m = CounterMetricFamily(f"bpftop_procs_{kind}", help_)
            m.add_metric([], self.counts.get(kind, 0))
            out.append(m)
        lost = CounterMetricFamily("bpftop_procs_lost_events",
                                   "Exec, exit, open and signal events the buffer had no room for")
        lost.add_metric([], self.lost)
        out.append(lost)
        return out
