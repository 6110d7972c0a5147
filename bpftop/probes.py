"""What the probes screen lists: every collector's hook ladder with its
state, and for attached programs their events per second and kernel cost
from BPF run-time statistics. Plain Python; rates come from the difference
between two samples."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .bpf.stats import program_stats
from .collectors.base import Collector
from .model import CollectorState, CollectorStatus


@dataclass(frozen=True)
class ProbeRow:
    key: str  # unique per row: tab, or tab/program
    tab: str
    program: str  # BPF program name, or the rung's name when not attached
    state: str  # attached, off (an optional part), detached, starting, failed, unavailable, not tried
    hook: str
    kind: str
    events_per_s: Optional[float] = None
    avg_ns: Optional[float] = None
    cpu_pct: Optional[float] = None  # share of one CPU
    reason: str = ""
    # Runs the kernel skipped since attach (recursion misses), None where
    # the kernel does not count them.
    misses: Optional[int] = None
    # An optional probe of the tab's collector (switched on its own, like
    # the syscalls tab's latency); "" for the tab's own programs.
    part: str = ""

    @property
    def label(self) -> str:
        """The PROBE column: the tab, or the tab and its optional probe."""
        return f"{self.tab} {self.part}" if self.part else self.tab


class ProbeMeter:
    def __init__(self) -> None:
        self._last: Dict[Tuple[str, int], Tuple[float, int, int]] = {}

    def sample(
        self, collectors: Sequence[Collector], statuses: Mapping[str, CollectorStatus]
    ) -> List[ProbeRow]:
        now = time.monotonic()
        rows: List[ProbeRow] = []
        seen = set()
        for collector in collectors:
            status = statuses.get(collector.tab, collector.status)
            chosen = status.chosen
            programs = collector.programs() if status.state in (CollectorState.RUNNING, CollectorState.ERROR) else []
            optional = collector.optional_probes()
            parts = collector.optional_programs()
            if programs and chosen is not None:
                for name, fd in programs:
                    part = parts.get(name, "")
                    # Switched off, it reads the switch at each event once
                    # attached (from its first switch-on): its cost is
                    # shown as it is, none before then.
                    off = bool(part) and not optional.get(part, False)
                    stats = program_stats(fd)
                    rate = avg = cpu = None
                    if stats is not None:
                        key = (collector.tab, stats.prog_id)
                        seen.add(key)
                        before = self._last.get(key)
                        self._last[key] = (now, stats.run_cnt, stats.run_time_ns)
                        if before is not None and now > before[0]:
                            runs = stats.run_cnt - before[1]
                            spent = stats.run_time_ns - before[2]
                            secs = now - before[0]
                            rate = runs / secs
                            avg = spent / runs if runs > 0 else None
                            cpu = 100.0 * spent / (secs * 1e9)
                    rows.append(ProbeRow(
                        f"{collector.tab}/{name}", collector.tab, name, "off" if off else "attached",
                        chosen.strategy, chosen.kind.value, rate, avg, cpu,
                        misses=stats.recursion_misses if stats is not None else None, part=part,
                        reason=f"{part} is off: it only reads the switch (here or its tab's key), "
                        "once attached at its first switch-on"
                        if off else "",
                    ))
            else:
                rows.append(self._idle_row(collector, status))
                # Optional probes can be set before their collector runs:
                # they start as set.
                for part, on in optional.items():
                    rows.append(ProbeRow(
                        f"{collector.tab}/{part}", collector.tab, "-", "on at start" if on else "off at start",
                        "-", "-", part=part,
                        reason=f"{part} {'starts on' if on else 'stays off'} when {collector.tab} starts",
                    ))
            rows.extend(self._other_rungs(collector.tab, status))
        self._last = {k: v for k, v in self._last.items() if k in seen}
        return rows

    @staticmethod
    def _other_rungs(tab: str, status: CollectorStatus) -> List[ProbeRow]:
        """The ladder's other rungs: why each is not the one in use."""
        chosen = status.chosen
        rows = []
        for a in status.attempts:
            if a is chosen:
                continue
            if a.ok is None:
                state, reason = "standby", f"not tried: {chosen.strategy if chosen else 'another rung'} is in use"
            elif a.ok:
                state, reason = "standby", "works here; a higher rung is in use"
            else:
                state, reason = "unavailable", a.reason
            rows.append(ProbeRow(f"{tab}:{a.strategy}", tab, "-", state, a.strategy, a.kind.value, reason=reason))
        return rows

    @staticmethod
    def _idle_row(collector: Collector, status: CollectorStatus) -> ProbeRow:
        state = {
            CollectorState.DISABLED: "detached",
            CollectorState.STARTING: "starting",
            CollectorState.FAILED: "unavailable",
            CollectorState.STOPPED: "detached",
        }.get(status.state, status.state.value)
        reason = status.message
        if status.state is CollectorState.FAILED and status.attempts:
            reason = "; ".join(f"{a.strategy}: {a.reason}" for a in status.attempts if a.reason)
        chosen = status.chosen
        return ProbeRow(
            collector.tab, collector.tab, "-", state,
            chosen.strategy if chosen else "-", chosen.kind.value if chosen else "-", reason=reason,
        )
