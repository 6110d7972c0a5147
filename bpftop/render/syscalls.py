"""The Syscalls tab as tables (screen and text) and as JSON."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..jsonout import iso_time
from ..model import SyscallsSnapshot
from ..tables import (
    Column,
    Table,
    filter_text,
    fmt_ns_as_ms,
    fmt_ns_as_us,
    fmt_pct,
    fmt_rate,
    header_line,
    render_table,
)

# How to read the tab's numbers: the help screen shows it under the tab's keys.
HELP = """\
COUNT: calls that returned in the interval (counted at syscall exit, like
syscount; exit and exit_group never return and are not counted). A clone,
clone3, fork or vfork counts once, in the caller, as strace -f counts it
(syscount also counts the new task's return from it).
ERRORS: calls that returned -4095..-1 (an errno). TOTAL and AVG: time from
entry to exit, for calls whose entry was seen while latency was on; empty
while it is off (the default: L switches it, --latency starts with it on).
PER SEC: COUNT / interval.
The process filter (-p) is applied in the kernel.
"""


def tables(snap: SyscallsSnapshot) -> Tuple[Table, Table]:
    secs = snap.interval_s or 1.0
    calls = Table(
        name="syscalls",
        title="Syscalls",
        columns=(
            Column("syscall", "SYSCALL", numeric=False, fmt=str, width=20),
            Column("count", "COUNT"),
            Column("rate", "PER SEC", fmt=fmt_rate),
            Column("errors", "ERRORS"),
            Column("err_pct", "ERR %", fmt=fmt_pct, width=6),
            Column("total_ns", "TOTAL ms", fmt=fmt_ns_as_ms, width=11),
            Column("avg_ns", "AVG us", fmt=fmt_ns_as_us, width=10),
        ),
        rows=tuple(
            (
                r.syscall,
                r.count,
                r.count / secs,
                r.errors,
                100.0 * r.errors / r.count if r.count else None,
                r.total_ns,
                r.avg_ns,
            )
            for r in snap.rows
        ),
        empty="no syscalls in this interval" + (" for the filtered processes" if snap.pid_filter else ""),
        sort_column=1,
    )
    procs = Table(
        name="processes",
        title="Processes",
        columns=(
            Column("pid", "PID", width=8),
            Column("comm", "COMM", numeric=False, fmt=str, width=16),
            Column("count", "SYSCALLS"),
            Column("rate", "PER SEC", fmt=fmt_rate),
        ),
        rows=tuple((p.pid, p.comm, p.count, p.count / secs) for p in snap.processes),
        empty="no processes in this interval",
        sort_column=2,
    )
    return calls, procs


def summary(snap: SyscallsSnapshot) -> str:
    secs = snap.interval_s or 1.0
    parts = [
        f"{snap.total_count} calls ({snap.total_count / secs:.0f}/s)",
        f"{snap.total_errors} errors",
        f"{len(snap.rows)} syscalls",
        f"{len(snap.processes)} processes",
    ]
    # Latency is a probe of its own (L switches it on the screen).
    parts.append("latency on" if snap.latency else "latency off")
    if snap.untracked_calls:
        parts.append(f"{snap.untracked_calls} calls from processes past the per-process map limit")
    return "  ".join(parts)


def to_text(snap: SyscallsSnapshot, limit: Optional[int] = None) -> str:
    calls, procs = tables(snap)
    lines = [
        header_line("syscalls", snap.interval_s, snap.taken_at, snap.hook,
                    filter_text(snap.pid_filter, snap.pid_exclude)),
        summary(snap),
        "",
    ]
    lines += render_table(calls.sorted_by(calls.sort_column), limit)
    lines.append("")
    lines += render_table(procs.sorted_by(procs.sort_column), limit)
    return "\n".join(lines) + "\n"


def to_dict(snap: SyscallsSnapshot) -> Dict[str, Any]:
    return {
        "tab": "syscalls",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "hook": snap.hook,
        "latency": snap.latency,
        "pid_filter": {"pids": list(snap.pid_filter), "exclude": snap.pid_exclude},
        "rows": [
            {
                "syscall": r.syscall,
                "nr": r.nr,
                "count": r.count,
                "errors": r.errors,
                "total_ns": r.total_ns,
                "avg_ns": None if r.avg_ns is None else round(r.avg_ns, 1),
            }
            for r in snap.rows
        ],
        "processes": [{"pid": p.pid, "comm": p.comm, "count": p.count} for p in snap.processes],
        "untracked_calls": snap.untracked_calls,
    }
