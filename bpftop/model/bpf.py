"""Snapshot of the BPF tab: every BPF program the kernel has loaded, what it
cost over the interval, what it is attached to, the maps it uses and the
processes that hold it.

Run counts and run time are counted by the kernel only while BPF
statistics are on; when they are off the interval's figures are None
("off"), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .history import TabHistory


@dataclass(frozen=True)
class Owner:
    pid: int
    comm: str
    # Where the hold was seen: "fdinfo" (a program or link fd, its
    # /proc/PID/fdinfo), "perf_event fd" (a perf event running it, asked
    # with BPF_TASK_FD_QUERY).
    source: str = "fdinfo"


@dataclass(frozen=True)
class MapRow:
    id: int
    type: str
    name: str
    max_entries: int
    # Entries in the map now: max_entries for arrays, counted key by key for
    # hash-like maps, None for kinds whose entries cannot be counted
    # (ring buffers, perf event arrays, ...).
    entries: Optional[int]
    entries_complete: bool  # False: counting stopped at the limit; there are more
    memlock: Optional[int]  # bytes the kernel charges for it (fdinfo memlock)


@dataclass(frozen=True)
class Cost:
    """One interval of a program's runs, from the kernel's run_cnt and
    run_time_ns; the figures the table shows come from it."""

    runs: int
    run_ns: int
    interval_s: float

    @property
    def avg_ns(self) -> Optional[float]:
        return self.run_ns / self.runs if self.runs else None

    @property
    def events_per_s(self) -> float:
        return self.runs / self.interval_s if self.interval_s > 0 else 0.0

    @property
    def cpu_pct(self) -> float:
        """Share of one CPU: run time over the interval's wall time."""
        return 100.0 * self.run_ns / (self.interval_s * 1e9) if self.interval_s > 0 else 0.0


@dataclass(frozen=True)
class ProgramRow:
    id: int
    type: str
    name: str
    tag: str
    # Attach points as the kernel reports them ("raw_tracepoint task_rename",
    # "tracepoint block_rq_issue", "xdp eth0"); empty when it tells nothing.
    attach: Tuple[str, ...]
    # The interval's cost; None when statistics were off.
    cost: Optional[Cost]
    # Since the program was loaded (None when statistics never ran for it
    # or this kernel's info lacks the fields).
    total_runs: Optional[int]
    total_run_ns: Optional[int]
    # Runs skipped in the interval by the kernel's recursion guard (counted
    # whether or not statistics are on); None where the kernel has no counter.
    recursion_misses: Optional[int]
    loaded_at: float  # epoch seconds
    uid: int
    xlated_bytes: int
    jited_bytes: int
    verified_insns: Optional[int]
    map_ids: Tuple[int, ...]
    owners: Tuple[Owner, ...]
    ours: bool  # held by this bpftop process
    # bpffs paths that keep it loaded (it or a link to it pinned): a hold
    # without a process.
    pinned: Tuple[str, ...] = ()

    @property
    def runs(self) -> Optional[int]:
        return self.cost.runs if self.cost else None

    @property
    def run_ns(self) -> Optional[int]:
        return self.cost.run_ns if self.cost else None

    @property
    def avg_ns(self) -> Optional[float]:
        return self.cost.avg_ns if self.cost else None

    @property
    def events_per_s(self) -> Optional[float]:
        return self.cost.events_per_s if self.cost else None

    @property
    def cpu_pct(self) -> Optional[float]:
        return self.cost.cpu_pct if self.cost else None

    @property
    def total_avg_ns(self) -> Optional[float]:
        if not self.total_runs or self.total_run_ns is None:
            return None
        return self.total_run_ns / self.total_runs

    @property
    def pids(self) -> Tuple[int, ...]:
        return tuple(dict.fromkeys(o.pid for o in self.owners))

    @property
    def comms(self) -> Tuple[str, ...]:
        return tuple(dict.fromkeys(o.comm for o in self.owners))


@dataclass(frozen=True)
class BpfSnapshot:
    interval_s: float
    taken_at: float
    rows: Tuple[ProgramRow, ...]
    maps: Tuple[MapRow, ...]  # the maps the listed programs use
    stats_on: bool
    # How statistics are on: "bpftop --bpf-stats fd", "sysctl"; "" when off.
    stats_how: str
    # Over every program and map the kernel has (before filters).
    programs_total: int
    cpu_pct_total: Optional[float]  # None when statistics were off
    map_bytes_total: int
    maps_total: int
    own_pid: int
    stats_note: str = ""  # why --bpf-stats could not switch them on
    owners_source: str = "fdinfo"
    pid_filter: Tuple[int, ...] = ()
    hook: str = ""
    tab: str = field(default="bpf", init=False)

    def map(self, map_id: int) -> Optional[MapRow]:
        for m in self.maps:
            if m.id == map_id:
                return m
        return None


HISTORY_POINTS = 60  # the detail pane's run-time history


def graph(history: TabHistory, snap: BpfSnapshot) -> None:
    """Each program's average run time per interval (ns per run), and the
    host's total BPF CPU %."""
    history.series("cpu_pct_total", maxlen=HISTORY_POINTS).append(snap.taken_at, snap.cpu_pct_total)
    present = set()
    for row in snap.rows:
        present.add(row.id)
        history.series(("avg_ns", row.id), maxlen=HISTORY_POINTS).append(snap.taken_at, row.avg_ns)
    # Unloaded programs' histories go (ids are never reused).
    for key in history.keys():
        if isinstance(key, tuple) and key[0] == "avg_ns" and key[1] not in present:
            history.get(key).clear()
