"""The Cache tab driven by Pilot with a scripted collector (no BPF, no root)."""

import itertools
import time

from fakes import FakeCollector
from uihelpers import column_texts, wait_rows

from bpftop.app import BpftopApp
from bpftop.model.cache import CacheCounts, CacheRow, CacheSnapshot
from bpftop.model.common import CountUnit
from bpftop.model.history import Series
from bpftop.screens.help import HelpScreen
from bpftop.widgets.cache_hitplot import HitRatioPlot, seconds_ago
from bpftop.widgets.top_table import TopTable


def cache_snapshot(seq=0):
    return CacheSnapshot(
        interval_s=1.0,
        taken_at=time.time(),
        rows=(
            CacheRow(42, 0, "postgres", CacheCounts(accesses=900 + seq, added=100)),
            CacheRow(7, 1000, "cat", CacheCounts(accesses=50, added=50)),
            CacheRow(99, 0, "dd", CacheCounts(added=10, dirtied=300)),
        ),
        totals=CacheCounts(accesses=950 + seq, added=160, dirtied=300),
        buffers_mb=10.0,
        cached_mb=1500.0,
        hook="tracepoints",
    )


class FakeCacheCollector(FakeCollector):
    tab = "cache"
    title = "Cache"
    hook_name = "tracepoints (counts pages: a long note for doctor)"
    hook_points = ("filemap:x",)
    hook_label = "tracepoints"
    hook_unit = CountUnit.PAGES

    def __init__(self):
        super().__init__(snapshots=(cache_snapshot(i) for i in itertools.count()))


async def test_table_summary_plot_at_80x24():
    collector = FakeCacheCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#cache-table", TopTable)
        await wait_rows(pilot, table, 3)
        await pilot.pause(0.3)
        assert column_texts(table, 2) == ["postgres", "cat", "dd"]  # by HITS
        summary = str(app.screen.query_one(".tab-summary").render())
        assert summary.startswith("hit ") and "Cached 1500 MB" in summary
        status = str(app.screen.query_one(".tab-status").render())
        assert status == "running on tracepoints (tracepoint; counts pages)"
        plot = app.screen.query_one("#cache-plot", HitRatioPlot)
        xs, ys = plot.series()
        assert len(ys) >= 2 and all(0 <= y <= 100 for y in ys) and xs[-1] == 0
        # Legible at 80x24: the plot and at least the three rows are on screen.
        assert plot.region.height >= 5 and table.region.height >= 5
        # plotext loads after the first frame; then the plot draws the series.
        for _ in range(100):
            if plot.canvas is not None:
                break
            await pilot.pause(0.05)
        assert plot.canvas is not None, "the plot never loaded"
        await pilot.pause(0.3)
        assert plot.canvas.region.height >= 5
        drawn = "\n".join(line.text for line in plot.canvas.render_lines(plot.canvas.region.reset_offset))
        assert "hit ratio" in drawn and "(now " in drawn and "seconds ago" in drawn
    assert collector.stopped


async def test_sort_and_plot_toggle_keys():
    app = BpftopApp([FakeCacheCollector()], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#cache-table", TopTable)
        await wait_rows(pilot, table, 3)
        table.focus()
        await pilot.press("greater_than_sign", "greater_than_sign")  # HITS -> DIRTIES
        assert table.sort_column == 5
        assert column_texts(table, 2)[0] == "dd"
        await pilot.press("less_than_sign")  # MISSES
        assert column_texts(table, 2)[0] == "postgres"
        plot = app.screen.query_one("#cache-plot", HitRatioPlot)
        await pilot.press("g")
        assert not plot.display
        await pilot.press("g")
        assert plot.display


async def test_help_lists_the_formula_and_the_plot_key():
    app = BpftopApp([FakeCacheCollector()], interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "Cache tab" in text and "hit-ratio graph" in text
        assert "MISSES = max(0, N - D)" in text and "mm_filemap_get_pages" in text


def test_plot_leaves_out_intervals_without_reads():
    points = Series(maxlen=3)
    for t, r in ((1.0, 50.0), (2.0, None), (3.0, 100.0), (4.0, 75.0)):
        points.append(t, r)
    assert seconds_ago(list(points)) == ([-1.0, 0.0], [100.0, 75.0])
