"""The Cache tab as a table (screen and text) and as JSON."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..jsonout import iso_time
from ..model.cache import CacheSnapshot, CacheStats
from ..tables import Column, Table, filter_text, fmt_pct, header_line, render_table

# How to read the tab's numbers: the help screen shows it under the tab's keys.
HELP = """\
Per process, as bcc's cachetop, with cachestat's formula. From the raw
counters A accesses, B buffer dirties, N pages added, D pages dirtied:
  total = max(0, A - B); MISSES = max(0, N - D); HITS = total - MISSES,
  and when that is negative MISSES = total and HITS = 0 (readahead can add
  more pages than are read); DIRTIES = D.
  READ_HIT% = 100 * HITS / total; WRITE_HIT% = 100 * max(0, D - N) / D
  (dirtied pages that were already cached). Both stay within 0..100;
  '-' means nothing to divide by.
cachetop's own READ_HIT% and WRITE_HIT% divide by A + B + N + D and show
about 50% for a cold read; bpftop does not copy that.
Hooks. kprobe and fentry rungs count calls, as cachetop: A =
folio_mark_accessed / mark_page_accessed, B = mark_buffer_dirty, N =
filemap_add_folio / add_to_page_cache_lru, D = folio_account_dirtied (or
its tracepoint writeback_dirty_folio when it is inlined); on folio kernels
a call covers a whole folio. The tracepoint rung (kernels without kprobes)
counts pages: A = pages each read() asks for (mm_filemap_get_pages, counted
once per read even when the kernel reports it in several batches, so a read
past the end of a file counts the pages it asked for), plus pages of files
the process maps into its memory (the growth of its mapped file pages,
kmem:rss_stat: a fault on a large folio maps all of it, fault-around maps
what is cached around the fault); N = pages added
(mm_filemap_add_to_page_cache, 2^order per folio); D = pages dirtied
(writeback_dirty_folio, sized from the folio itself); B = 0, so writes add
no accesses. Misses are counted in the context that adds the pages, the
reader itself for readahead.
So HITS (tracepoint rung) are pages read with read() that were cached, plus
every cached file page a process maps: at start its binary and libraries
(a Python 3.11 that only starts and sleeps: about 1,700 pages, the
pages it touches and the cached pages fault-around maps next to them),
later any mmap()ed file. mlock, MAP_POPULATE and madvise(WILLNEED) on a
mapping count all the pages they map. A process's first change of mapped
pages after bpftop starts only sets its baseline.
The summary line is the same formula over everything the kernel counted
(after the pid filter; the comm filter narrows rows only), with Buffers
and Cached from /proc/meminfo. The process filter (-p) is applied in the
kernel.
"""


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
