"""Graph history, kept in one place: a bounded series of (time, value) per
tab and key, fed by the snapshots as they come. Views and widgets only
render from it, so a graph can never hold points from another timeline:
after a replay seek the history is rebuilt from the recording's frames up to
the position (``Replay.bring_history``), and a point older than the newest
one of its series starts that series over instead of being mixed in.

What a tab graphs is its own: a feeder beside its snapshot model (for
example model/disk.py ``graph``), named by its registry entry. TCP's
connect rate is the exception in where it comes from, not in where it is
kept: each snapshot carries the collector's series (``rate_history``, part
of the recording format), so its series here is that one, replaced whole.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Deque, Dict, Hashable, Iterable, Iterator, List, Mapping, Optional, Tuple

Point = Tuple[float, Any]  # (epoch seconds, value)

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


class TabHistory:
    """One tab's part of the history: what its graph feeder fills and its
    view draws from, without naming the tab."""

    def __init__(self, history: History, tab: str) -> None:
        self._history, self._tab = history, tab

    def series(self, key: Hashable, maxlen: Optional[int] = None, span_s: Optional[float] = None) -> Series:
        """The series of ``key``, made with these bounds on first use."""
        return self._history.series(self._tab, key, maxlen, span_s)

    def get(self, key: Hashable) -> Series:
        """The series of ``key`` as fed so far (empty if never)."""
        return self._history.get(self._tab, key)

    def keys(self) -> List[Hashable]:
        return self._history.keys(self._tab)


# Per tab, what turns a snapshot into points (the tab's registry entry says).
GraphFeeder = Callable[[TabHistory, Any], None]


class History:
    """Every graph's series, per tab and key. ``until``: the recording time
    a replay has brought it to (None when it holds no replayed frames)."""

    def __init__(self, feeders: Optional[Mapping[str, GraphFeeder]] = None) -> None:
        self._series: Dict[Tuple[str, Hashable], Series] = {}
        self._feeders: Dict[str, GraphFeeder] = dict(feeders or {})
        self.until: Optional[float] = None

    def series(self, tab: str, key: Hashable, maxlen: Optional[int] = None, span_s: Optional[float] = None) -> Series:
        found = self._series.get((tab, key))
        if found is None:
            found = self._series[(tab, key)] = Series(maxlen, span_s)
        return found

    def get(self, tab: str, key: Hashable) -> Series:
        return self._series.get((tab, key)) or Series()

    def of(self, tab: str) -> TabHistory:
        return TabHistory(self, tab)

    def keys(self, tab: str) -> List[Hashable]:
        return [key for (t, key), series in self._series.items() if t == tab and series]

    def feed(self, tab: str, snapshot: Any) -> None:
        feeder = self._feeders.get(tab)
        if feeder is not None:
            feeder(self.of(tab), snapshot)

    def clear(self) -> None:
        self._series.clear()
        self.until = None
