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


async def test_an_interval_with_the_same_rows_redraws_only_the_changed_rows() -> None:
    app = One()
    async with app.run_test() as pilot:
        t = app.query_one(TopTable)
        t.show(table(("a", 30), ("b", 20), ("c", 10)))
        await pilot.pause()
        drawn: List[int] = []
        real = t.render_line

        def spy(y):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return real(y)

        t.render_line = spy  # type: ignore[method-assign]
        t.show(table(("a", 31), ("b", 20), ("c", 10)))
        await pilot.pause()
        assert drawn == [1]  # a's line: not the header, not b or c
        assert shown(t) == [("a", "31"), ("b", "20"), ("c", "10")]
        assert "31" in screen_text(app).splitlines()[1]
        # New order: a cursor put on a row stays on it.
        t.move_cursor(row=2)
        t.show(table(("a", 31), ("b", 20), ("c", 40)))
        await pilot.pause()
        assert shown(t) == [("c", "40"), ("a", "31"), ("b", "20")]
        assert t.cursor_row == 0
        # ... until it is put back on the first row, the busiest: there it stays.
        t.move_cursor(row=0)
        t.show(table(("a", 31), ("b", 20), ("c", 4)))
        await pilot.pause()
        assert shown(t)[0] == ("a", "31") and t.cursor_row == 0
        # Rows gone, then none at all: the empty state, then rows again.
        t.show(table())
        await pilot.pause()
        assert shown(t)[0][0] == "nothing in this interval"
        assert "nothing in this interval" in screen_text(app)
        t.show(table(("d", 1)))
        await pilot.pause()
        assert shown(t) == [("d", "1")]
        lines = screen_text(app).splitlines()
        assert lines[1].split() == ["d", "1"] and lines[2].strip() == ""


async def test_the_cursor_keys_move_along_the_rows_and_say_which_row_is_highlighted() -> None:
    seen: List[object] = []

    class Watching(One):
        def on_top_table_row_highlighted(self, event: TopTable.RowHighlighted) -> None:
            seen.append(event.key)

    app = Watching()
    async with app.run_test(size=(40, 8)) as pilot:
        t = app.query_one(TopTable)
        t.focus()
        t.show(table(*((f"r{i:02}", 100 - i) for i in range(20))))
        await pilot.pause()
        await pilot.press("down", "down")
        await pilot.pause()
        assert t.cursor_row == 2 and seen[-1] == "r02"
        await pilot.press("end")
        await pilot.pause()
        assert t.cursor_row == 19 and seen[-1] == "r19"
        assert "r19" in screen_text(app), "the cursor's row scrolled out of sight"
        await pilot.press("home")
        await pilot.pause()
        assert t.cursor_row == 0 and "r00" in screen_text(app)
        # The row under the cursor goes: the cursor stays put, on the next row.
        t.show(table(*((f"r{i:02}", 100 - i) for i in range(1, 20))))
        await pilot.pause()
        assert t.cursor_row == 0 and seen[-1] == "r01"


async def test_an_untouched_cursor_stays_on_the_first_row_and_the_table_at_its_top() -> None:
    """The console's own syscalls, about equal and changing order every
    interval, scrolled the Syscalls tab away from its busiest rows."""
    app = One()
    async with app.run_test(size=(40, 8)) as pilot:
        t = app.query_one(TopTable)
        t.focus()
        t.show(table(*((f"r{i:02}", 100 - i) for i in range(20))))
        await pilot.pause()
        t.show(table(*((f"r{i:02}", 100 + i) for i in range(20))))  # r00 last now
        await pilot.pause()
        assert t.cursor_row == 0 and t.scroll_y == 0
        assert screen_text(app).splitlines()[1].split() == ["r19", "119"]


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


async def test_a_wider_cell_redraws_every_row_at_the_new_column_widths() -> None:
    app = One()
    async with app.run_test(size=(60, 10)) as pilot:
        t = app.query_one(TopTable)
        t.show(table(("a", 1), ("b", 22)))
        await pilot.pause()
        t.show(table(("a-much-longer-name", 1), ("b", 22)))
        await pilot.pause()
        lines = screen_text(app).splitlines()[:3]
        assert "a-much-longer-name" in lines[2]  # sorted by COUNT: b first
        # The numbers end in one column, under the header's.
        ends = {len(line.rstrip()) for line in lines[1:3]}
        assert len(ends) == 1 and lines[0].rstrip().endswith("COUNT v"), lines
        assert len(lines[0].rstrip()) == ends.pop()
