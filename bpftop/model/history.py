"""Graph history, kept in one place: a bounded series of (time, value) per
tab and key, fed by the snapshots as they come. Views and widgets only
render from it, so a graph can never hold points from another timeline:
after a replay seek the history is rebuilt from the recording's frames up to
the position (``Replay.bring_history``), and a point older than the newest
one of its series starts that series over instead of being mixed in.

TCP's connect rate is the exception in where it comes from, not in where it
is kept: each snapshot carries the collector's series (``rate_history``, part
of the recording format), so its series here is that one, replaced whole.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Hashable, Iterable, Iterator, List, Optional, Tuple

Point = Tuple[float, Any]  # (epoch seconds, value)

DISK_SPAN_S = 300.0  # the disk graphs cover the last five minutes
CACHE_POINTS = 120  # the hit-ratio graph covers the last 120 intervals


class Series:
    """Points oldest first, bounded by count (``maxlen``) and by age
    (``span_s`` before the newest)."""

    def __init__(self, maxlen: Optional[int] = None, span_s: Optional[float] = None) -> None:
        self.span_s = span_s
        self._points: Deque[Point] = collections.deque(maxlen=maxlen)

    def append(self, t: float, value: Any) -> None:
        if self._points and t < self._points[-1][0]:
            self._points.clear()  # another timeline: never mixed in
        self._points.append((t, value))
        if self.span_s is not None:
            self.trim(t - self.span_s)

    def trim(self, before: float) -> None:
        """Drop the points older than ``before``."""
        while self._points and self._points[0][0] < before:
            self._points.popleft()

    def replace(self, points: Iterable[Point]) -> None:
        self._points.clear()
        self._points.extend(points)

    def clear(self) -> None:
        self._points.clear()

    def __iter__(self) -> Iterator[Point]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)

    def __bool__(self) -> bool:
        return bool(self._points)

    def times(self) -> List[float]:
        return [t for t, _ in self._points]

    def values(self) -> List[Any]:
        return [v for _, v in self._points]

    def last(self) -> Optional[Point]:
        return self._points[-1] if self._points else None


# -- what each tab graphs ------------------------------------------------------
def _disk(history: "History", snap: Any) -> None:
    secs = snap.interval_s or 1.0
    for row in snap.rows:
        history.series("disk", row.disk).append(snap.taken_at, (row.ios / secs, row.p99_us))
    for key in history.keys("disk"):  # a disk gone quiet ages out too
        history.series("disk", key).trim(snap.taken_at - DISK_SPAN_S)


def _cache(history: "History", snap: Any) -> None:
    history.series("cache", "read_hit_pct").append(snap.taken_at, snap.system.read_hit_pct)


def _tcp(history: "History", snap: Any) -> None:
    # The collector keeps one rate per interval; the times are placed an
    # interval apart back from this snapshot's (the values are exact).
    rates = snap.rate_history
    step = snap.interval_s or 1.0
    n = len(rates)
    history.series("tcp", "connects_per_s").replace(
        (snap.taken_at - (n - 1 - i) * step, rate) for i, rate in enumerate(rates)
    )


GRAPHS: Dict[str, Callable[["History", Any], None]] = {"disk": _disk, "cache": _cache, "tcp": _tcp}
LIMITS: Dict[str, Dict[str, Any]] = {"disk": {"span_s": DISK_SPAN_S}, "cache": {"maxlen": CACHE_POINTS}}


class History:
    """Every graph's series, per tab and key. ``until``: the recording time
    a replay has brought it to (None when it holds no replayed frames)."""

    def __init__(self) -> None:
        self._series: Dict[Tuple[str, Hashable], Series] = {}
        self.until: Optional[float] = None

    def series(self, tab: str, key: Hashable) -> Series:
        """The series of ``key`` on ``tab`` (an empty one until fed)."""
        found = self._series.get((tab, key))
        if found is None:
            found = self._series[(tab, key)] = Series(**LIMITS.get(tab, {}))
        return found

    def keys(self, tab: str) -> List[Hashable]:
        return [key for (t, key), series in self._series.items() if t == tab and series]

    def feed(self, tab: str, snapshot: Any) -> None:
        graph = GRAPHS.get(tab)
        if graph is None:
            return
        graph(self, snapshot)

    def clear(self) -> None:
        self._series.clear()
        self.until = None
