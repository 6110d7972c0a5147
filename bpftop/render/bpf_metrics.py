"""The BPF tab as Prometheus metrics (``bpftop exporter``): what every BPF
program on the host costs, the host's total BPF overhead and map memory.

Per-program series are bounded: only the ``top_n`` programs by run time
since the exporter started get them; the totals cover every program.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..exporter.base import ProcessCount, TabMetrics
from ..model.bpf import BpfSnapshot
from ..safetext import safe

# (id, name, type): a program's labels. An id is never reused while the
# kernel runs, so a reloaded program is a new series.
ProgKey = Tuple[int, str, str]


class BpfMetrics(TabMetrics):
    unit = "runs"

    def __init__(self) -> None:
        self.runs: Dict[ProgKey, int] = {}
        self.run_ns: Dict[ProgKey, int] = {}
        self.all_runs = 0
        self.all_run_ns = 0
        self.latest: BpfSnapshot | None = None

    def fold(self, snapshot: Any) -> List[ProcessCount]:
        snap: BpfSnapshot = snapshot
        self.latest = snap
        live = set()
        for row in snap.rows:
            key = (row.id, safe(row.name), row.type)  # names are anyone's text
            live.add(key)
            if row.cost is None:
                continue  # statistics off: nothing counted, nothing to add
            self.runs[key] = self.runs.get(key, 0) + max(0, row.cost.runs)
            self.run_ns[key] = self.run_ns.get(key, 0) + max(0, row.cost.run_ns)
            self.all_runs += max(0, row.cost.runs)
            self.all_run_ns += max(0, row.cost.run_ns)
        # An unloaded program's series ends with it (its id never returns).
        for key in [k for k in self.runs if k not in live]:
            del self.runs[key], self.run_ns[key]
        return []

    def families(self, top_n: int) -> List[Metric]:
        snap = self.latest
        if snap is None:
            return []
        out: List[Metric] = []
        for name, help_, value in (
            ("programs", "BPF programs loaded on the host", snap.programs_total),
            ("maps", "BPF maps on the host", snap.maps_total),
            ("stats_enabled", "1 while the kernel counts BPF run time (kernel.bpf_stats_enabled or a stats fd)",
             int(snap.stats_on)),
        ):
            g = GaugeMetricFamily(f"bpftop_bpf_{name}", help_)
            g.add_metric([], value)
            out.append(g)
        mem = GaugeMetricFamily("bpftop_bpf_map_memory", "Memory the kernel charges for BPF maps (memlock)",
                                unit="bytes")
        mem.add_metric([], snap.map_bytes_total)
        out.append(mem)
        totals: Tuple[Tuple[str, str, float], ...] = (
            ("runs", "Runs of every BPF program on the host while statistics were on", self.all_runs),
            ("run_seconds", "Time every BPF program on the host ran while statistics were on",
             self.all_run_ns / 1e9),
        )
        for name, help_, total in totals:
            c = CounterMetricFamily(f"bpftop_bpf_all_{name}", help_)
            c.add_metric([], total)
            out.append(c)
        labels = ["id", "name", "type"]
        runs = CounterMetricFamily("bpftop_bpf_program_runs", "Runs of one BPF program (top N by run time)",
                                   labels=labels)
        secs = CounterMetricFamily("bpftop_bpf_program_run_seconds",
                                   "Run time of one BPF program (top N by run time)", labels=labels)
        for key in sorted(self.run_ns, key=lambda k: -self.run_ns[k])[:top_n]:
            values = [str(key[0]), key[1], key[2]]
            runs.add_metric(values, self.runs[key])
            secs.add_metric(values, self.run_ns[key] / 1e9)
        out += [runs, secs]
        return out
