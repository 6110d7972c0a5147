"""Tables: what a tab shows, as columns and raw row values.

The TUI's top tables and the plain-text output render the same Table, so a
text snapshot is what the screen shows. Sorting lives here too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .model import SyscallsSnapshot


def fmt_int(v: Any) -> str:
    return "-" if v is None else str(int(v))


def fmt_rate(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_ns_as_us(v: Any) -> str:
    return "-" if v is None else f"{v / 1e3:.2f}"


def fmt_ns_as_ms(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.3f}"


def fmt_pct(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    numeric: bool = True
    fmt: Callable[[Any], str] = fmt_int
    width: int = 10  # minimum, for plain text


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: Tuple[Column, ...]
    rows: Tuple[Tuple[Any, ...], ...]
    # Index of the column whose value identifies a row across refreshes.
    key_column: int = 0
    empty: str = "nothing in this interval"
    sort_column: int = 1  # the order the screen opens with

    def cells(self, row: Sequence[Any]) -> List[str]:
        return [c.fmt(v) for c, v in zip(self.columns, row)]

    def sorted_by(self, column: int, reverse: Optional[bool] = None) -> "Table":
        """Rows ordered by one column; numbers largest first unless reversed,
        text A-Z. Missing values always go last."""
        col = self.columns[column]
        descending = col.numeric
        if reverse:
            descending = not descending
        present = [r for r in self.rows if r[column] is not None]
        missing = [r for r in self.rows if r[column] is None]
        present.sort(key=lambda r: r[column], reverse=descending)
        return replace(self, rows=tuple(present + missing))


def syscall_tables(snap: SyscallsSnapshot) -> Tuple[Table, Table]:
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


def syscall_summary(snap: SyscallsSnapshot) -> str:
    secs = snap.interval_s or 1.0
    parts = [
        f"{snap.total_count} calls ({snap.total_count / secs:.0f}/s)",
        f"{snap.total_errors} errors",
        f"{len(snap.rows)} syscalls",
        f"{len(snap.processes)} processes",
    ]
    if not snap.latency:
        parts.append("latency off")
    if snap.untracked_calls:
        parts.append(f"{snap.untracked_calls} calls from processes past the per-process map limit")
    return "  ".join(parts)


def filter_text(pids: Sequence[int], exclude: bool) -> str:
    op = "!=" if exclude else "="
    return " ".join(f"pid{op}{p}" for p in pids)


def header_line(tab: str, interval_s: float, taken_at: float, hook: str, filters: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(taken_at))
    parts = [f"bpftop {tab}", stamp, f"interval {interval_s:.2f}s"]
    if hook:
        parts.append(f"hook: {hook}")
    if filters:
        parts.append(f"filter: {filters}")
    return "  ".join(parts)


def render_table(table: Table, limit: Optional[int] = None) -> List[str]:
    """A table as aligned plain-text lines: numbers right, text left."""
    rows = table.rows if limit is None else table.rows[:limit]
    texts = [table.cells(r) for r in rows]
    widths = [
        max([c.width, len(c.header)] + [len(t[i]) for t in texts]) for i, c in enumerate(table.columns)
    ]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (col, text) in enumerate(zip(table.columns, cells)):
            last = i == len(table.columns) - 1
            if col.numeric:
                out.append(text.rjust(widths[i]))
            else:
                out.append(text if last else text.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [line([c.header for c in table.columns])]
    lines += [line(t) for t in texts]
    if not rows:
        lines.append(f"  ({table.empty})")
    elif limit is not None and len(table.rows) > limit:
        lines.append(f"  ... {len(table.rows) - limit} more")
    return lines


def syscalls_text(snap: SyscallsSnapshot, limit: Optional[int] = None) -> str:
    calls, procs = syscall_tables(snap)
    lines = [
        header_line("syscalls", snap.interval_s, snap.taken_at, snap.hook, filter_text(snap.pid_filter, snap.pid_exclude)),
        syscall_summary(snap),
        "",
    ]
    lines += render_table(calls.sorted_by(calls.sort_column), limit)
    lines.append("")
    lines += render_table(procs.sorted_by(procs.sort_column), limit)
    return "\n".join(lines) + "\n"
