"""The Disk tab as a table and log2 histograms (screen and text) and as JSON."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..jsonout import iso_time
from ..model.disk import OPS, DiskRow, DiskSnapshot, OpStats, percentile, slot_high_us, slot_low_us
from ..tables import Column, Table, fmt_rate, header_line, render_table

# How to read the tab's numbers: the help screen shows it under the tab's keys.
HELP = """\
Latency is device service time, from the request's issue to the driver to its
completion (bcc biolatency). With --disk-queued it starts when the request is
created (block_io_start) or queued (block_rq_insert), so OS queue time counts.
Hooks: raw block tracepoints first, keyed by the request itself (its layout
from the kernel's BTF); classic tracepoints carry no request pointer, so
there a completion is matched to its start by (disk, operation, sector),
partial completions followed, two requests at one sector sharing the older
start. Classic tracepoint programs are skipped by the kernel whenever another
BPF program (or a bpf() call) is active on that CPU: with the syscalls
program on classic tracepoints that lost 27% of the completions here; raw
tracepoint programs only skip themselves.
LOST: completions the program never saw, so not counted. By request: each
leaves its start behind, found when the request starts again or dropped as
stale (a start from before a moment the device itself had nothing in flight,
or older than 30 s); by sector: the kernel's recursion-miss counters where it
keeps them (not before Linux 6.7), else '?'. A start never matched after
30 s is never matched. Histogram buckets are log2 in
microseconds ([1,2), [2,4) ... us, biolatency's shape). P50/P90/P99 are
estimated from them: the bucket is exact, the value inside it interpolated,
so an estimate can be off by up to the bucket's width (a factor of 2); it
never exceeds MAX, the true largest latency measured in the kernel.
IOPS, R/s, W/s, MB/s: completed requests and bytes / interval (a flush is a
request; an empty flush from fsync that the kernel completes without sending
it to the device is not). INFL: requests started and not completed when read.
QD: average requests in flight over the interval (summed latency / time).
Select a disk with the cursor; the table and histogram follow it.
"""

UNITS = ("us", "ms")


def fmt_latency(unit: str) -> Callable[[Any], str]:
    """Formatter of a latency given in microseconds, shown in ``unit``."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if unit == "ms":
            v = v / 1e3
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}"

    return fmt


def fmt_mbs(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_qd(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def filters_text(snap: DiskSnapshot) -> str:
    parts = []
    op = "!=" if snap.disk_exclude else "="
    parts += [f"disk{op}{d}" for d in snap.disk_filter]
    op = "!=" if snap.op_exclude else "="
    parts += [f"op{op}{o}" for o in snap.op_filter]
    return " ".join(parts)


def table(snap: DiskSnapshot, unit: str = "us", cumulative: bool = False) -> Table:
    rows = snap.cumulative if cumulative else snap.rows
    secs = (snap.cumulative_s if cumulative else snap.interval_s) or 1.0
    lat = fmt_latency(unit)
    return Table(
        name="disks",
        title="Disks",
        columns=(
            Column("disk", "DISK", numeric=False, fmt=str, width=6),
            Column("iops", "IOPS", fmt=fmt_rate, width=7),
            Column("rps", "R/s", fmt=fmt_rate, width=6),
            Column("wps", "W/s", fmt=fmt_rate, width=6),
            Column("mbs", "MB/s", fmt=fmt_mbs, width=7),
            Column("p50", f"P50 {unit}", fmt=lat, width=8),
            Column("p99", f"P99 {unit}", fmt=lat, width=8),
            Column("inflight", "INFL", width=4),
            Column("qd", "QD", fmt=fmt_qd, width=5),
        ),
        rows=tuple(
            (
                r.disk,
                r.ios / secs,
                r.reads / secs,
                r.writes / secs,
                r.bytes / secs / 1e6,
                r.p50_us,
                r.p99_us,
                r.in_flight,
                # Little's law: time spent by completed I/Os / wall time.
                r.total_ns / 1e9 / secs,
            )
            for r in rows
        ),
        empty="no I/O",
        sort_column=1,
    )


def summary(snap: DiskSnapshot) -> str:
    secs = snap.interval_s or 1.0
    ios, nbytes = snap.total_ios, snap.total_bytes
    untimed = sum(r.ios - r.timed for r in snap.rows)
    parts = [
        f"{ios} I/Os ({ios / secs:.0f}/s)",
        f"{nbytes / secs / 1e6:.2f} MB/s",
        f"{len(snap.rows)} disks",
        "latency: queue+device (from request creation)" if snap.queued else "latency: device (issue to completion)",
    ]
    if untimed:
        parts.append(f"{untimed} untimed (start not seen)")
    if snap.lost is None:
        parts.append("lost: ? (this kernel does not count what it skips of this hook)")
    elif snap.lost:
        parts.append(f"{snap.lost} lost (completions never seen, not counted)")
    if snap.stale:
        parts.append(f"{snap.stale} stale starts dropped")
    return "  ".join(parts)


def _bound(us: int, unit: str) -> str:
    if unit == "ms":
        v = us / 1e3
        return f"{v:.3f}" if v < 10 else (f"{v:.2f}" if v < 100 else f"{v:.0f}")
    return str(us)


def hist_rows(hist: Sequence[int], unit: str = "us") -> List[Tuple[str, str, int]]:
    """(low, high, count) labels of the slots from the first to the last
    non-empty one; ``high`` is inclusive as biolatency prints it."""
    used = [i for i, n in enumerate(hist) if n]
    if not used:
        return []
    out = []
    for slot in range(used[0], used[-1] + 1):
        low, high = slot_low_us(slot), slot_high_us(slot) - 1
        out.append((_bound(low, unit), _bound(high, unit), hist[slot]))
    return out


def hist_text(hist: Sequence[int], unit: str = "us", width: int = 40) -> List[str]:
    """biolatency's ``usecs : count | distribution |`` shape."""
    rows = hist_rows(hist, unit)
    if not rows:
        return ["  (no timed I/O)"]
    lw = max(10, max(len(r[0]) for r in rows))
    hw = max(10, max(len(r[1]) for r in rows))
    top = max(r[2] for r in rows)
    name = "usecs" if unit == "us" else "msecs"
    lines = [f"{name:>{lw}}{'':{hw + 5}}: count     distribution"]
    for low, high, n in rows:
        stars = width * n // top  # as biolatency draws it
        lines.append(f"{low:>{lw}} -> {high:<{hw}} : {n:<9} |{'*' * stars:<{width}}|")
    return lines


def percentiles(hist: Sequence[int], max_ns: Optional[int]) -> Dict[str, Optional[float]]:
    max_us = None if max_ns is None else max_ns / 1e3
    return {
        "p50_us": percentile(hist, 0.5, max_us),
        "p90_us": percentile(hist, 0.9, max_us),
        "p99_us": percentile(hist, 0.99, max_us),
        "max_us": max_us,
    }


def percentile_line(label: str, count: int, hist: Sequence[int], max_ns: Optional[int], unit: str = "us") -> str:
    p = percentiles(hist, max_ns)
    fmt = fmt_latency(unit)
    return (
        f"{label:<8} {count:>8} I/Os  p50 {fmt(p['p50_us'])}  p90 {fmt(p['p90_us'])}"
        f"  p99 {fmt(p['p99_us'])}  max {fmt(p['max_us'])} {unit}"
    )


def disk_text(row: DiskRow, unit: str = "us") -> List[str]:
    lines = [f"disk = {row.disk} ({row.dev})"]
    lines.append(percentile_line("all", row.ios, row.hist(), row.max_ns(), unit))
    for o in row.ops:
        lines.append(percentile_line(o.op, o.ios, o.hist, o.max_ns, unit))
    lines += hist_text(row.hist(), unit)
    return lines


def to_text(snap: DiskSnapshot, limit: Optional[int] = None, unit: str = "us") -> str:
    t = table(snap, unit)
    lines = [
        header_line("disk", snap.interval_s, snap.taken_at, snap.hook, filters_text(snap)),
        summary(snap),
        "",
    ]
    lines += render_table(t.sorted_by(t.sort_column), limit)
    rows = snap.rows if limit is None else snap.rows[:limit]
    for row in rows:
        if row.ios:
            lines.append("")
            lines += disk_text(row, unit)
    return "\n".join(lines) + "\n"


def _r(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 1)


def hist_dict(hist: Sequence[int]) -> Dict[str, int]:
    """{bucket lower bound in us: count}, non-empty buckets only."""
    return {str(slot_low_us(i)): n for i, n in enumerate(hist) if n}


def _op_dict(o: OpStats) -> Dict[str, Any]:
    p = percentiles(o.hist, o.max_ns)
    return {
        "ios": o.ios,
        "bytes": o.bytes,
        "timed": o.timed,
        **{k: _r(v) for k, v in p.items()},
        "avg_us": _r(o.avg_us),
        "hist": hist_dict(o.hist),
    }


def row_dict(r: DiskRow) -> Dict[str, Any]:
    p = percentiles(r.hist(), r.max_ns())
    return {
        "disk": r.disk,
        "dev": r.dev,
        "ios": r.ios,
        "reads": r.reads,
        "writes": r.writes,
        "flushes": r.flushes,
        "discards": r.discards,
        "bytes": r.bytes,
        "timed": r.timed,
        **{k: _r(v) for k, v in p.items()},
        "avg_us": _r(r.avg_us),
        "in_flight": r.in_flight,
        "hist": hist_dict(r.hist()),
        "ops": {o.op: _op_dict(o) for o in r.ops},
    }


def to_dict(snap: DiskSnapshot) -> Dict[str, Any]:
    return {
        "tab": "disk",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "hook": snap.hook,
        "latency": "queued" if snap.queued else "device",
        "hist_unit": "us",
        "disk_filter": {"disks": list(snap.disk_filter), "exclude": snap.disk_exclude},
        "op_filter": {"ops": list(snap.op_filter), "exclude": snap.op_exclude},
        "rows": [row_dict(r) for r in snap.rows],
        "lost": snap.lost,
        "lost_total": snap.lost_total,
        "lost_starts": snap.lost_starts,
        "stale": snap.stale,
    }


__all__ = ["OPS", "UNITS", "disk_text", "hist_rows", "hist_text", "summary", "table", "to_dict", "to_text"]
