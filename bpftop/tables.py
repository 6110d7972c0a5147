"""Tables: what a tab shows, as columns and raw row values, and plain-text
rendering of them.

The TUI's top tables and the plain-text output render the same Table, so a
text snapshot is what the screen shows. Sorting lives here too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .safetext import safe


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
        # Cells carry names from the traced machine: escaped here, where the
        # screen and the text output both take them.
        return [safe(c.fmt(v)) for c, v in zip(self.columns, row)]

    def sorted_by(self, column: int, reverse: Optional[bool] = None) -> Table:
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


def filter_text(pids: Sequence[int], exclude: bool) -> str:
    op = "!=" if exclude else "="
    return " ".join(f"pid{op}{p}" for p in pids)


def header_line(tab: str, interval_s: float, taken_at: float, hook: str, filters: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(taken_at))
    parts = [f"bpftop {tab}", stamp, f"interval {interval_s:.2f}s"]
    if hook:
        parts.append(f"hook: {safe(hook)}")
    if filters:
        parts.append(f"filter: {safe(filters)}")
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
