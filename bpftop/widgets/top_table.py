"""A sortable top table that renders a ``tables.Table`` and keeps the cursor
on the same row across refreshes."""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from rich.text import Text
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from ..filters import Filter
from ..screens.textual_internals import forget_rendered_rows, update_scrollbars
from ..tables import Table


class TopTable(DataTable):
    DEFAULT_CSS = """
    TopTable {
        height: 1fr;
    }
    """

    # Rows come and go and columns widen every interval, and Textual lays out
    # the whole screen whenever a widget's virtual size changes. This table's
    # own box does not depend on it (1fr): only its scrollbars do, so the
    # screen is laid out only when one appears or goes.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

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

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # Column widths are measured here, after the rows came in: rows
        # rendered meanwhile (a paint in between) must be rendered again.
        super()._update_dimensions(new_rows)
        forget_rendered_rows(self)

    def __init__(self, *, id: Optional[str] = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.model: Optional[Table] = None
        self.sort_column: Optional[int] = None  # None: the table's own default
        self.reverse = False
        self.row_filter = Filter()
        self._shape: tuple = ()
        # What is on screen: (row key, cell texts) in order.
        self._plain: List[Tuple[str, Tuple[str, ...]]] = []

    @property
    def view(self) -> Optional[Table]:
        """The table as it is shown: filtered and sorted."""
        if self.model is None:
            return None
        return self.row_filter.apply(self.model).sorted_by(self._sort_index(self.model), self.reverse)

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

    def _labels(self, table: Table) -> list:
        labels = []
        for i, col in enumerate(table.columns):
            mark = ""
            if i == self.sort_column:
                descending = col.numeric != self.reverse
                mark = " v" if descending else " ^"
            label = Text(col.header + mark, style="bold" if mark else "")
            labels.append(label)
        return labels

    def _render_view(self) -> None:
        view = self.view
        if view is None:
            return
        shape = (view.name, tuple(c.header for c in view.columns), self.sort_column, self.reverse)
        if view.rows:
            plain = [(str(row[view.key_column]), tuple(view.cells(row))) for row in view.rows]
        else:
            plain = [("__empty__", (view.empty,) + ("",) * (len(view.columns) - 1))]
        if shape == self._shape and [k for k, _ in plain] == [k for k, _ in self._plain]:
            # Same rows in the same order: change only the cells that changed, so an
            # idle interval re-measures and re-renders almost nothing.
            for (key, cells), (_, before) in zip(plain, self._plain):
                for col, cell, old in zip(view.columns, cells, before):
                    if cell != old:
                        self.update_cell(key, col.key, self._cell(col.numeric, cell), update_width=True)
            self._plain = plain
            return
        cursor_key = None
        if self.row_count and 0 <= self.cursor_row < self.row_count:
            cursor_key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        if shape != self._shape:
            self.clear(columns=True)
            for col, label in zip(view.columns, self._labels(view)):
                self.add_column(label, key=col.key)
            self._shape = shape
        else:
            self.clear()
        self._plain = plain
        if not view.rows:
            self.add_row(*([Text(view.empty, style="dim italic")] + [""] * (len(view.columns) - 1)), key="__empty__")
            return
        for key, cells in plain:
            self.add_row(*[self._cell(col.numeric, cell) for col, cell in zip(view.columns, cells)], key=key)
        if cursor_key is not None and cursor_key != "__empty__":
            try:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False, scroll=False)
            except Exception:
                pass  # that row is gone this interval

    @staticmethod
    def _cell(numeric: bool, text: str) -> Text:
        return Text(text, justify="right" if numeric else "left")
