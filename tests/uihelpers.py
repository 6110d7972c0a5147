"""Waiting on and reading the console in Pilot tests."""


def column_texts(table, col):
    return [str(table.get_row_at(i)[col]) for i in range(table.row_count)]


async def wait_for(pilot, cond, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition never held")


async def wait_rows(pilot, table, n=1, timeout=5.0):
    try:
        await wait_for(pilot, lambda: table.model is not None and table.row_count >= n, timeout)
    except AssertionError:
        raise AssertionError("table never filled") from None


def views_composed(app) -> bool:
    """Every tab's view is mounted with its tables: Pilot's own start-up
    wait covers the widgets that existed when it began, and on a loaded
    machine the tabs' children are composed after that."""
    views = app.main_screen.views()
    return len(views) == len(app.specs) and all(v.is_mounted and v.tables() for v in views)
