"""The Cache tab as a table (screen and text) and as JSON."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..jsonout import iso_time
from ..model.cache import CacheSnapshot, CacheStats
from ..tables import Column, Table, filter_text, fmt_pct, header_line, render_table


def _round(v: Optional[float], digits: int = 2) -> Optional[float]:
    return None if v is None else round(v, digits)


def table(snap: CacheSnapshot) -> Table:
    rows = []
    for r in snap.rows:
        s = r.stats
        rows.append((r.pid, r.uid, r.comm, s.hits, s.misses, s.dirties, s.read_hit_pct, s.write_hit_pct))
    # Short: the screen shows it in the PID column, which keeps the width.
    empty = "no activity" + (" (filtered)" if snap.pid_filter or snap.comm_filter else "")
    return Table(
        name="cache",
        title="Page cache by process",
        columns=(
            Column("pid", "PID", width=7),
            Column("uid", "UID", width=5),
            Column("comm", "COMM", numeric=False, fmt=str, width=16),
            Column("hits", "HITS", width=8),
            Column("misses", "MISSES", width=8),
            Column("dirties", "DIRTIES", width=8),
            Column("read_hit_pct", "READ_HIT%", fmt=fmt_pct, width=9),
            Column("write_hit_pct", "WRITE_HIT%", fmt=fmt_pct, width=10),
        ),
        rows=tuple(rows),
        empty=empty,
        sort_column=3,
    )


def _mb(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.0f}"


def summary(snap: CacheSnapshot) -> str:
    s: CacheStats = snap.system
    ratio = "-" if s.read_hit_pct is None else f"{s.read_hit_pct:.1f}%"
    # The ratio and meminfo first: the screen wraps the rest at 80 columns.
    parts = [
        f"hit {ratio}",
        f"Buffers {_mb(snap.buffers_mb)} MB",
        f"Cached {_mb(snap.cached_mb)} MB",
        f"{snap.unit}: {s.total} read",
        f"{s.hits} hit",
        f"{s.misses} miss",
        f"{s.dirties} dirtied",
    ]
    if snap.untracked_events:
        parts.append(f"{snap.untracked_events} events from processes past the per-process map limit")
    return "  ".join(parts)


def filters(snap: CacheSnapshot) -> str:
    parts = [filter_text(snap.pid_filter, snap.pid_exclude)]
    if snap.comm_filter:
        parts.append(f"comm~{snap.comm_filter}")
    return " ".join(p for p in parts if p)


def to_text(snap: CacheSnapshot, limit: Optional[int] = None) -> str:
    t = table(snap)
    lines = [
        header_line("cache", snap.interval_s, snap.taken_at, snap.hook, filters(snap)),
        summary(snap),
        "",
    ]
    lines += render_table(t.sorted_by(t.sort_column), limit)
    return "\n".join(lines) + "\n"


def to_dict(snap: CacheSnapshot) -> Dict[str, Any]:
    s = snap.system
    return {
        "tab": "cache",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "hook": snap.hook,
        "unit": snap.unit,
        "pid_filter": {"pids": list(snap.pid_filter), "exclude": snap.pid_exclude},
        "comm_filter": snap.comm_filter,
        "rows": [
            {
                "pid": r.pid,
                "uid": r.uid,
                "comm": r.comm,
                "hits": r.stats.hits,
                "misses": r.stats.misses,
                "dirties": r.stats.dirties,
                "read_hit_pct": _round(r.stats.read_hit_pct),
                "write_hit_pct": _round(r.stats.write_hit_pct),
                # The raw counters the four above are computed from.
                "accesses": r.counts.accesses,
                "buffer_dirties": r.counts.buffer_dirties,
                "added": r.counts.added,
                "dirtied": r.counts.dirtied,
            }
            for r in snap.rows
        ],
        "totals": {
            "accesses": s.total,
            "hits": s.hits,
            "misses": s.misses,
            "dirties": s.dirties,
            "hit_ratio_pct": _round(s.read_hit_pct),
            "buffers_mb": _round(snap.buffers_mb, 1),
            "cached_mb": _round(snap.cached_mb, 1),
        },
        "untracked_events": snap.untracked_events,
    }
