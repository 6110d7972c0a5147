"""The BPF tab as a table (screen and text) and as JSON."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from ..jsonout import iso_time
from ..model.bpf import BpfSnapshot, ProgramRow
from ..safetext import safe
from ..tables import Column, Table, fmt_rate, header_line, render_table

HELP = """\
Every BPF program the kernel has loaded (any tool's, bpftop's own marked
with *), read through bpf(2): bpftop loads no program for this tab.
RUNS, AVG_NS, EVENTS/S and CPU% are the interval's, from the kernel's
run_cnt and run_time_ns: AVG_NS = run time / runs, EVENTS/S = runs per
second, CPU% = run time / interval (100 = one whole CPU). The kernel counts
them only while BPF statistics are on (kernel.bpf_stats_enabled): when they
are off these columns read "off" (never 0). --bpf-stats switches them on
through a BPF_ENABLE_STATS fd, which the kernel releases when bpftop exits,
however it exits; bpftop never writes the sysctl. Switching statistics on
costs every BPF program on the host two clock reads per run.
ATTACH is what the kernel reports: link info (raw tracepoints, XDP with
its interface, cgroups, perf events) and BPF_TASK_FD_QUERY on perf event
fds (tracepoints, kprobes as BCC attaches them); '-' when it says nothing
(socket filters, programs only held by a fd).
OWNERS are the processes holding a program, link or perf event fd
(/proc/PID/fdinfo); a pinned program nobody holds shows none.
MAPS (detail pane, JSON): type, entries (max_entries for arrays, counted
key by key for hash maps, '-' where they cannot be counted), memlock bytes.
The totals line sums CPU% over every program and memlock over every map.
"""

STATS_OFF = "stats off"
# In a cell: as narrow as the numbers, so that CPU% stays on an 80-column
# screen (the totals line says why and how to switch them on).
CELL_OFF = "off"


def _stats(v: Any, fmt: Any) -> str:
    return CELL_OFF if v is None else fmt(v)


def fmt_owner_pids(v: Any) -> str:
    return ",".join(str(p) for p in v) if v else "-"


def fmt_names(v: Any) -> str:
    return ",".join(v) if v else "-"


def fmt_runs(v: Any) -> str:
    return _stats(v, lambda x: str(int(x)))


def fmt_avg(v: Any) -> str:
    return _stats(v, lambda x: f"{x:.0f}")


def fmt_rate_or_off(v: Any) -> str:
    return _stats(v, fmt_rate)


def fmt_pct_or_off(v: Any) -> str:
    return _stats(v, lambda x: f"{x:.2f}")


def fmt_mark(v: Any) -> str:
    return "*" if v else ""


def fmt_bytes(v: Optional[int]) -> str:
    if v is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v = v / 1024  # type: ignore[assignment]
    return str(v)


def _avg_when_counted(r: ProgramRow, stats_on: bool) -> Optional[float]:
    # Ran zero times in the interval: no average, but not "off" either.
    if r.cost is None:
        return None
    return r.avg_ns if r.avg_ns is not None else 0.0


def table(snap: BpfSnapshot) -> Table:
    rows = []
    for r in snap.rows:
        rows.append((
            r.id, r.ours, r.type, r.name, r.runs, _avg_when_counted(r, snap.stats_on), r.events_per_s, r.cpu_pct,
            r.attach, r.pids, r.comms or (("(pinned)",) if r.pinned else ()), r.total_avg_ns,
        ))
    empty = "no BPF programs" + (" held by the filtered processes" if snap.pid_filter else "")
    return Table(
        name="bpf",
        title="BPF programs",
        columns=(
            Column("id", "ID", width=5),
            Column("ours", "*", numeric=False, fmt=fmt_mark, width=1),
            Column("type", "TYPE", numeric=False, fmt=str, width=14),
            Column("name", "NAME", numeric=False, fmt=str, width=15),
            Column("runs", "RUNS", fmt=fmt_runs, width=9),
            Column("avg_ns", "AVG_NS", fmt=fmt_avg, width=9),
            Column("events_per_s", "EVENTS/S", fmt=fmt_rate_or_off, width=9),
            Column("cpu_pct", "CPU%", fmt=fmt_pct_or_off, width=9),
            Column("attach", "ATTACH", numeric=False, fmt=fmt_names, width=20),
            Column("pid", "PIDS", numeric=False, fmt=fmt_owner_pids, width=7),
            Column("comm", "OWNERS", numeric=False, fmt=fmt_names, width=12),
            # Since load: '-' when the kernel never counted a run of it.
            Column("total_avg_ns", "TOTAL_AVG_NS", fmt=lambda v: "-" if v is None else f"{v:.0f}", width=12),
        ),
        rows=tuple(rows),
        empty=empty,
        sort_column=7,
    )


def stats_text(snap: BpfSnapshot) -> str:
    if snap.stats_on:
        return f"stats on ({snap.stats_how})"
    note = f": {snap.stats_note}" if snap.stats_note else " (--bpf-stats switches them on)"
    return f"stats off{note}"


def summary(snap: BpfSnapshot) -> str:
    cpu = STATS_OFF if snap.cpu_pct_total is None else f"{snap.cpu_pct_total:.2f}%"
    if snap.cpu_pct_total is not None and snap.interval_s >= 2:
        # The console does not read this tab while it is hidden: its first
        # reading on return covers the time away.
        cpu += f" over {snap.interval_s:.0f}s"
    ours = sum(1 for r in snap.rows if r.ours)
    parts = [
        f"{snap.programs_total} programs",
        f"BPF CPU {cpu}",
        stats_text(snap),
        f"maps {snap.maps_total}, {fmt_bytes(snap.map_bytes_total)}",
    ]
    if ours:
        parts.append(f"* = bpftop's own ({ours})")
    return "  ".join(parts)


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def detail_lines(snap: BpfSnapshot, row: ProgramRow) -> List[str]:
    """The detail pane's text for one program: what it is, its maps, its owners."""
    lines = [
        f"prog {row.id} {safe(row.type)} {safe(row.name) or '-'}  tag {row.tag}"
        + ("  (bpftop's own)" if row.ours else ""),
        f"loaded {_time(row.loaded_at)}  uid {row.uid}  xlated {row.xlated_bytes} B  jited {row.jited_bytes} B"
        f"  verified insns {row.verified_insns if row.verified_insns is not None else '-'}",
        "runs since load: "
        + ("-" if row.total_runs is None else f"{row.total_runs}, avg {fmt_avg(row.total_avg_ns)} ns")
        + (f"  recursion misses in interval: {row.recursion_misses}" if row.recursion_misses else ""),
        "attach: " + (", ".join(safe(a) for a in row.attach) if row.attach else "- (the kernel reports none)"),
        "owners (fdinfo): " + (", ".join(f"{o.pid} {safe(o.comm)} [{o.source}]" for o in row.owners)
                               if row.owners else "- (no process holds it)"),
    ]
    if row.pinned:
        lines.append("pinned: " + ", ".join(safe(p) for p in row.pinned))
    if row.map_ids:
        lines.append("maps:")
        for map_id in row.map_ids:
            m = snap.map(map_id)
            if m is None:
                lines.append(f"  {map_id}  (gone)")
                continue
            entries = "-" if m.entries is None else (f"{m.entries}" + ("" if m.entries_complete else "+"))
            lines.append(f"  {m.id}  {safe(m.type)}  {safe(m.name) or '-'}  entries {entries}/{m.max_entries}"
                         f"  memlock {fmt_bytes(m.memlock)}")
    else:
        lines.append("maps: none")
    return lines


def to_text(snap: BpfSnapshot, limit: Optional[int] = None) -> str:
    t = table(snap)
    pid_filter = " ".join(f"pid={p}" for p in snap.pid_filter)
    lines = [header_line("bpf", snap.interval_s, snap.taken_at, snap.hook, pid_filter), summary(snap), ""]
    lines += render_table(t.sorted_by(t.sort_column), limit)
    return "\n".join(lines) + "\n"


def _round(v: Optional[float], digits: int = 3) -> Optional[float]:
    return None if v is None else round(v, digits)


def _map_dict(snap: BpfSnapshot, map_id: int) -> Dict[str, Any]:
    m = snap.map(map_id)
    if m is None:
        return {"id": map_id, "gone": True}
    return {"id": m.id, "type": m.type, "name": m.name, "max_entries": m.max_entries, "entries": m.entries,
            "entries_complete": m.entries_complete, "memlock": m.memlock}


def to_dict(snap: BpfSnapshot) -> Dict[str, Any]:
    return {
        "tab": "bpf",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "hook": snap.hook,
        "pid_filter": list(snap.pid_filter),
        "rows": [
            {
                "id": r.id,
                "type": r.type,
                "name": r.name,
                "tag": r.tag,
                "attach": list(r.attach),
                # null when statistics were off in the interval
                "runs": r.runs,
                "run_ns": r.run_ns,
                "avg_ns": _round(r.avg_ns, 1),
                "events_per_s": _round(r.events_per_s),
                "cpu_pct": _round(r.cpu_pct, 4),
                "total_runs": r.total_runs,
                "total_run_ns": r.total_run_ns,
                "recursion_misses": r.recursion_misses,
                "loaded_at": iso_time(r.loaded_at),
                "uid": r.uid,
                "xlated_bytes": r.xlated_bytes,
                "jited_bytes": r.jited_bytes,
                "verified_insns": r.verified_insns,
                "owners": [{"pid": o.pid, "comm": o.comm, "source": o.source} for o in r.owners],
                "pinned": list(r.pinned),
                "ours": r.ours,
                "maps": [_map_dict(snap, i) for i in r.map_ids],
            }
            for r in snap.rows
        ],
        "totals": {
            "programs": snap.programs_total,
            "cpu_pct": _round(snap.cpu_pct_total, 4),
            "maps": snap.maps_total,
            "map_bytes": snap.map_bytes_total,
            "stats": "on" if snap.stats_on else "off",
            "stats_how": snap.stats_how,
            "stats_note": snap.stats_note,
        },
    }
