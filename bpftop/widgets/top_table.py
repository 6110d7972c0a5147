"""A sortable top table that renders a ``tables.Table``, keeps the cursor on
the same row across refreshes, and costs almost nothing when little changed.

A line-API widget of its own rather than Textual's DataTable: DataTable
renders every visible cell through Rich again whenever any cell changes, and
measures every cell of a row it is given again, which made an idle console
spend most of its time re-rendering unchanged numbers. Here a row is one
string of padded cells, built only when its cells or the column widths
change, and only the lines that changed are redrawn.
"""

from __future__ import annotations

from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..filters import Filter
from ..screens.textual_internals import update_scrollbars
from ..tables import Table

EMPTY_KEY = "__empty__"
PAD = 1  # blank cells either side of every cell, as DataTable's cell_padding


class TopTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    TopTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .top-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .top-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .top-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .top-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .top-table--empty {
            text-style: dim italic;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"top-table--header", "top-table--cursor", "top-table--empty"}
    BINDINGS: ClassVar[List[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_row", "First row", show=False),
        Binding("end,ctrl+end", "last_row", "Last row", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor is on another row: moved, or its row was replaced by
        another one."""

        def __init__(self, table: TopTable, key: Optional[str], row: int) -> None:
            super().__init__()
            self.table = table
            self.key = key  # the row's key column, as text; None for no row
            self.row = row

        @property
        def control(self) -> TopTable:
            return self.table

    # Rows come and go and columns widen every interval, and Textual lays out
    # the whole screen whenever a widget's virtual size changes. This table's
    # own box does not depend on it (1fr): only its scrollbars do, so the
    # screen is laid out only when one appears or goes.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    cursor_row: Reactive[int] = Reactive(0, repaint=False)

    def watch_virtual_size(self, size: Size) -> None:
        width, height = self.container_size
        bar_w, bar_h = self.styles.scrollbar_size_vertical, self.styles.scrollbar_size_horizontal
        vertical = size.height > height
        horizontal = size.width > width - (bar_w if vertical else 0)
        vertical = vertical or (horizontal and size.height > height - bar_h)
        if (horizontal, vertical) != (self.show_horizontal_scrollbar, self.show_vertical_scrollbar):
            self.refresh(layout=True)
        else:
            update_scrollbars(self, size)

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id)
        self.model: Optional[Table] = None
        self.sort_column: Optional[int] = None  # None: the table's own default
        self.reverse = False
        self.row_filter = Filter()
        # What is shown: the header's cells, then (row key, cell texts) in order.
        self._labels: Tuple[str, ...] = ()
        self._numeric: Tuple[bool, ...] = ()
        self._rows: List[Tuple[str, Tuple[str, ...]]] = []
        self._widths: Tuple[int, ...] = ()
        # Rendered rows by position: (what they were rendered from, the strip).
        self._strips: Dict[int, Tuple[tuple, Strip]] = {}
        self._highlighted: Optional[str] = None
        # Whether the cursor keeps to its row as the order changes: once the
        # operator has put it on a row below the first. Until then (and
        # after Home) it stays on the first row, the busiest: following the
        # row it was on scrolled an untouched table away from its top as
        # soon as that row's count fell.
        self._follow = False
        # The table's own style: Textual works it out from every ancestor's
        # styles on each call, and render_line needs it for each line (a
        # sixth of an idle console's UI thread).
        self._base_style: Optional[Style] = None

    # -- the data --------------------------------------------------------------
    @property
    def view(self) -> Optional[Table]:
        """The table as it is shown: filtered and sorted."""
        if self.model is None:
            return None
        return self.row_filter.apply(self.model).sorted_by(self._sort_index(self.model), self.reverse)

    @property
    def labels(self) -> Tuple[str, ...]:
        """The column headers as shown, with the sort mark."""
        return self._labels

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def get_row_at(self, row: int) -> List[str]:
        """The cells of the row shown at ``row``, as text."""
        return list(self._rows[row][1])

    def row_key(self, row: int) -> Optional[str]:
        """The key column of the row shown at ``row``; None for none or the
        empty state's row."""
        if 0 <= row < len(self._rows) and self._rows[row][0] != EMPTY_KEY:
            return self._rows[row][0]
        return None

    def _sort_index(self, table: Table) -> int:
        return table.sort_column if self.sort_column is None else self.sort_column

    def set_filter(self, row_filter: Filter) -> None:
        self.row_filter = row_filter
        self._render_view()

    def show(self, table: Table) -> None:
        self.model = table
        if self.sort_column is None or self.sort_column >= len(table.columns):
            self.sort_column = table.sort_column
        self._render_view()

    def cycle_sort(self, step: int) -> None:
        if self.model is None:
            return
        self.sort_column = (self._sort_index(self.model) + step) % len(self.model.columns)
        self._render_view()

    def toggle_reverse(self) -> None:
        self.reverse = not self.reverse
        self._render_view()

    def _header(self, table: Table) -> Tuple[str, ...]:
        labels = []
        for i, col in enumerate(table.columns):
            mark = ""
            if i == self.sort_column:
                mark = " v" if col.numeric != self.reverse else " ^"
            labels.append(col.header + mark)
        return tuple(labels)

    def _render_view(self) -> None:
        view = self.view
        if view is None:
            return
        labels = self._header(view)
        numeric = tuple(c.numeric for c in view.columns)
        if view.rows:
            rows = [(str(row[view.key_column]), tuple(view.cells(row))) for row in view.rows]
        else:
            rows = [(EMPTY_KEY, (view.empty,) + ("",) * (len(view.columns) - 1))]
        widths = tuple(
            max([cell_len(label)] + [cell_len(cells[i]) for _, cells in rows]) for i, label in enumerate(labels)
        )
        cursor_key = self.row_key(self.cursor_row)
        before = self._rows
        whole = (labels, numeric, widths) != (self._labels, self._numeric, self._widths)
        self._labels, self._numeric, self._widths, self._rows = labels, numeric, widths, rows
        for gone in [r for r in self._strips if r >= len(rows)]:
            del self._strips[gone]
        self.virtual_size = Size(sum(w + 2 * PAD for w in widths), len(rows) + 1)
        # A cursor the operator put on a row stays on it wherever it went.
        keys = [k for k, _ in rows]
        cursor = self.cursor_row
        if self._follow and cursor_key is not None and cursor_key in keys:
            cursor = keys.index(cursor_key)
        cursor = max(0, min(cursor, len(rows) - 1))
        moved = cursor != self.cursor_row
        self.set_reactive(TopTable.cursor_row, cursor)
        if moved:
            self._scroll_to_cursor()
        if whole or moved:
            self.refresh()
        else:
            changed = [i for i, row in enumerate(rows) if i >= len(before) or before[i] != row]
            changed += range(len(rows), len(before))  # rows gone: blank lines now
            self._refresh_rows(changed)
        self._check_highlight()

    # -- the cursor ------------------------------------------------------------
    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        self.cursor_row = max(0, min(row, len(self._rows) - 1))
        self._follow = self.cursor_row > 0
        if scroll:
            self._scroll_to_cursor()

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._refresh_rows([old, new])
        self._check_highlight()

    def _check_highlight(self) -> None:
        key = self.row_key(self.cursor_row)
        if key != self._highlighted:
            self._highlighted = key
            self.post_message(self.RowHighlighted(self, key, self.cursor_row))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)  # less the header

    def _scroll_to_cursor(self) -> None:
        top, row = round(self.scroll_y), self.cursor_row
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + self._page():
            self.scroll_to(y=row - self._page() + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + self._page())

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(row=round(self.scroll_y) + offset.y - 1, scroll=False)

    # -- drawing ---------------------------------------------------------------
    def _refresh_rows(self, rows: Sequence[int]) -> None:
        top, width = round(self.scroll_y), self.size.width
        for row in rows:
            y = row - top + 1
            if 1 <= y < self.size.height:
                self.refresh(Region(0, y, width, 1))

    def _line(self, cells: Sequence[str]) -> str:
        parts = []
        for text, width, numeric in zip(cells, self._widths, self._numeric):
            fill = " " * (width - cell_len(text))
            parts.append(" " * PAD + (fill + text if numeric else text + fill) + " " * PAD)
        return "".join(parts)

    def notify_style_update(self) -> None:
        # Textual calls this on the table whenever its styles or an
        # ancestor's are worked out anew (focus, a theme, CSS).
        self._base_style = None
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        base = self._base_style
        if base is None:
            base = self._base_style = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("top-table--header")
            strip = Strip([Segment(self._line(self._labels), style)])
        else:
            row = round(self.scroll_y) + y - 1
            if not 0 <= row < len(self._rows):
                return Strip.blank(self.size.width, base)
            key, cells = self._rows[row]
            style = base
            if key == EMPTY_KEY:
                style += self.get_component_rich_style("top-table--empty")
            if row == self.cursor_row:
                style += self.get_component_rich_style("top-table--cursor")
            source = (cells, self._widths, style)
            cached = self._strips.get(row)
            if cached is not None and cached[0] == source:
                strip = cached[1]
            else:
                strip = Strip([Segment(self._line(cells), style)])
                self._strips[row] = (source, strip)
        x = round(self.scroll_x)
        return strip.crop(x, x + self.size.width).extend_cell_length(self.size.width, style if y else base)
