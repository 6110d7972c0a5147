"""Snapshot of the Cache tab, and the hit/miss arithmetic (pure, tested).

The raw counters are those bcc's cachestat and cachetop count:

    A  accesses        mark_page_accessed calls (kprobe/fentry), or pages
                       read through the page cache (tracepoints)
    B  buffer dirties  mark_buffer_dirty calls (kprobe/fentry; 0 otherwise)
    N  added           pages added to the page cache (add_to_page_cache_lru)
    D  dirtied         pages that went clean -> dirty (account_page_dirtied)

and the formula is Brendan Gregg's cachestat, per process as in cachetop:

    total   = max(0, A - B)           reads through the cache
    misses  = max(0, N - D)           pages added that were not for writes
    hits    = total - misses          (if negative: misses = total, hits = 0;
                                       readahead can add more than is read)
    read hit %  = 100 * hits / total
    write hit % = 100 * max(0, D - N) / D   dirtied pages that were already
                                            cached (N pays for writes first,
                                            as in misses above)

Both percentages lie in [0, 100] by construction and are None when their
base is 0. cachetop's own READ_HIT%/WRITE_HIT% divide by A + B + N + D and
can read 50% for a cold read (bcc issue 1586); bpftop does not copy that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .common import Counters
from .history import TabHistory


@dataclass(frozen=True)
class CacheCounts(Counters):
    """Raw counters for one process (or all), over one interval."""

    accesses: int = 0
    buffer_dirties: int = 0
    added: int = 0
    dirtied: int = 0

    def plus(self, other: CacheCounts) -> CacheCounts:
        return CacheCounts(
            self.accesses + other.accesses,
            self.buffer_dirties + other.buffer_dirties,
            self.added + other.added,
            self.dirtied + other.dirtied,
        )

    @property
    def empty(self) -> bool:
        return not (self.accesses or self.buffer_dirties or self.added or self.dirtied)


@dataclass(frozen=True)
class CacheStats:
    """What the tab shows, derived from CacheCounts by ``cache_stats``."""

    total: int  # reads through the cache: hits + misses
    hits: int
    misses: int
    dirties: int
    read_hit_pct: Optional[float]
    write_hit_pct: Optional[float]


def _clamp_pct(value: float) -> float:
    return min(100.0, max(0.0, value))


def cache_stats(c: CacheCounts) -> CacheStats:
    """The cachestat formula (see the module doc). Negative inputs, which a
    counter going backwards would give, count as 0."""
    accesses, bufdirty, added, dirtied = (max(0, v) for v in (c.accesses, c.buffer_dirties, c.added, c.dirtied))
    total = max(0, accesses - bufdirty)
    misses = max(0, added - dirtied)
    hits = total - misses
    if hits < 0:
        misses, hits = total, 0
    read_pct = _clamp_pct(100.0 * hits / total) if total else None
    write_pct = _clamp_pct(100.0 * max(0, dirtied - added) / dirtied) if dirtied else None
    return CacheStats(total, hits, misses, dirtied, read_pct, write_pct)


@dataclass(frozen=True)
class CacheRow:
    pid: int
    uid: int
    comm: str
    counts: CacheCounts

    @property
    def stats(self) -> CacheStats:
        return cache_stats(self.counts)

    @property
    def hits(self) -> int:
        return self.stats.hits

    @property
    def misses(self) -> int:
        return self.stats.misses

    @property
    def dirties(self) -> int:
        return self.stats.dirties

    @property
    def read_hit_pct(self) -> Optional[float]:
        return self.stats.read_hit_pct

    @property
    def write_hit_pct(self) -> Optional[float]:
        return self.stats.write_hit_pct


@dataclass(frozen=True)
class CacheSnapshot:
    interval_s: float
    taken_at: float  # epoch seconds at the end of the interval
    rows: Tuple[CacheRow, ...]
    # Everything the kernel counted after the pid filter, including
    # processes the per-process map had no room for; not narrowed by the
    # comm filter, which applies to rows only.
    totals: CacheCounts
    buffers_mb: Optional[float]  # /proc/meminfo Buffers, at the end
    cached_mb: Optional[float]  # /proc/meminfo Cached
    # "pages" on the tracepoint rung, "calls" on kprobe/fentry (as cachetop).
    unit: str = "pages"
    pid_filter: Tuple[int, ...] = ()
    pid_exclude: bool = False
    comm_filter: str = ""
    hook: str = ""
    # Events the kernel could not attribute to a process (map full).
    untracked_events: int = 0
    tab: str = field(default="cache", init=False)

    @property
    def system(self) -> CacheStats:
        return cache_stats(self.totals)


GRAPH_POINTS = 120  # the hit-ratio graph covers the last 120 intervals


def graph(history: TabHistory, snap: CacheSnapshot) -> None:
    """The system's read hit ratio per interval."""
    history.series("read_hit_pct", maxlen=GRAPH_POINTS).append(snap.taken_at, snap.system.read_hit_pct)
