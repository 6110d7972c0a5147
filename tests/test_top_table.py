"""The top table redraws only what changed between intervals, and what it
shows is always the latest table, in the latest order."""

from __future__ import annotations

from typing import List, Tuple

from textual.app import App, ComposeResult

from bpftop.screens.textual_internals import screen_text
from bpftop.tables import Column, Table, fmt_int
from bpftop.widgets.top_table import TopTable

COLUMNS = (Column("name", "NAME", numeric=False, fmt=str), Column("count", "COUNT", fmt=fmt_int))


def table(*rows: Tuple[str, int]) -> Table:
    return Table("t", "T", COLUMNS, tuple(rows))


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield TopTable(id="t")


def shown(t: TopTable) -> List[Tuple[str, ...]]:
    return [tuple(str(c) for c in t.get_row_at(i)) for i in range(t.row_count)]


async def test_an_interval_with_the_same_rows_updates_only_the_changed_cells() -> None:
    app = One()
    async with app.run_test() as pilot:
        t = app.query_one(TopTable)
        t.show(table(("a", 30), ("b", 20), ("c", 10)))
        await pilot.pause()
        updated: List[Tuple[object, object]] = []
        real = t.update_cell

        def spy(row_key, column_key, value, *, update_width=False):  # type: ignore[no-untyped-def]
            updated.append((row_key, column_key))
            return real(row_key, column_key, value, update_width=update_width)

        t.update_cell = spy  # type: ignore[method-assign]
        t.show(table(("a", 31), ("b", 20), ("c", 10)))
        await pilot.pause()
        assert updated == [("a", "count")]
        assert shown(t) == [("a", "31"), ("b", "20"), ("c", "10")]
        # New order: the table is rebuilt in it, and the cursor stays on its row.
        t.move_cursor(row=2)
        t.show(table(("a", 31), ("b", 20), ("c", 40)))
        await pilot.pause()
        assert shown(t) == [("c", "40"), ("a", "31"), ("b", "20")]
        assert t.cursor_row == 0
        # Rows gone, then none at all: the empty state, then rows again.
        t.show(table())
        await pilot.pause()
        assert shown(t)[0][0] == "nothing in this interval"
        t.show(table(("d", 1)))
        await pilot.pause()
        assert shown(t) == [("d", "1")]


async def test_a_table_that_changes_size_lays_out_the_screen_only_when_a_scrollbar_comes_or_goes() -> None:
    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        t = app.query_one(TopTable)
        t.show(table(("a", 1), ("b", 2)))
        await pilot.pause()
        layouts: List[bool] = []
        real = t.refresh

        def spy(*regions, repaint=True, layout=False, recompose=False):  # type: ignore[no-untyped-def]
            layouts.append(layout)
            return real(*regions, repaint=repaint, layout=layout, recompose=recompose)

        t.refresh = spy  # type: ignore[method-assign]
        # Wider numbers and one more row: the table's virtual size changes.
        t.show(table(("a", 1000000), ("b", 2), ("c", 3)))
        await pilot.pause()
        assert not any(layouts) and not t.show_vertical_scrollbar
        assert shown(t)[0] == ("a", "1000000")
        # More rows than fit: the scrollbar appears, and goes again.
        t.show(table(*((f"r{i}", i) for i in range(40))))
        await pilot.pause()
        await pilot.pause()
        assert t.show_vertical_scrollbar and any(layouts)
        t.show(table(("a", 1)))
        await pilot.pause()
        await pilot.pause()
        assert not t.show_vertical_scrollbar


async def test_rows_painted_before_their_columns_were_measured_are_painted_again() -> None:
    """A paint between new rows and the idle pass that measures their
    columns (CI saw one) cached them cut at the old width, for good: the
    table no longer lays the screen out when its virtual size changes, which
    is what told Textual's DataTable to render its rows again."""
    app = One()
    async with app.run_test(size=(60, 10)) as pilot:
        t = app.query_one(TopTable)
        t.show(table(("a", 1)))
        await pilot.pause()
        t.show(table(("a-much-longer-name", 1)))
        assert "a-much-longer-name" not in screen_text(app)  # painted before the columns are measured
        await pilot.pause()
        assert "a-much-longer-name" in screen_text(app)
