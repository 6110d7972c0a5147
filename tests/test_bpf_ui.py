"""The BPF tab driven by Pilot with a scripted collector (no BPF, no root)."""

from bpf_tab_fakes import FakeBpfCollector
from test_console import type_filter
from uihelpers import column_texts, wait_for, wait_rows

from bpftop.app import BpftopApp
from bpftop.views.bpf import BpfView
from bpftop.widgets.top_table import TopTable


async def test_table_totals_detail_and_history():
    collector = FakeBpfCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#bpf-table", TopTable)
        await wait_rows(pilot, table, 3)
        assert column_texts(table, 0) == ["11", "10", "12"]  # by CPU%
        summary = str(app.screen.query_one(".tab-summary").render())
        assert summary.startswith("3 programs  BPF CPU 0.54%  stats on (sysctl)")
        view = app.screen.query_one(BpfView)
        assert view.selected == 11
        await wait_for(pilot, lambda: len(view.history.get(("avg_ns", 10)).values()) >= 3)
        table.focus()
        await pilot.press("down")
        await pilot.pause(0.2)
        assert view.selected == 10
        detail = "\n".join(view.detail_text())
        assert "(bpftop's own)" in detail and "entries 3/1024" in detail and "raw_tracepoint sys_exit" in detail
        label = str(app.screen.query_one("#bpf-history-label").render())
        assert label.startswith("prog 10 avg ns per run") and "max 400" in label
        # Every column sorts.
        for _ in range(len(table.model.columns)):
            await pilot.press("greater_than_sign")
            assert sorted(column_texts(table, 0)) == ["10", "11", "12"]
        assert table.region.height >= 4
    assert collector.stopped


async def test_filters_on_owner_and_attach_point():
    app = BpftopApp([FakeBpfCollector()], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#bpf-table", TopTable)
        await wait_rows(pilot, table, 3)
        await type_filter(pilot, "pid=78")
        assert column_texts(table, 0) == ["12"]
        await type_filter(pilot, "attach~eth0")
        assert column_texts(table, 0) == ["11"]
        await type_filter(pilot, "comm!~sshd type=raw_tracepoint")
        assert column_texts(table, 0) == ["10"]
        await type_filter(pilot, "bogus=1", paste=True)
        assert "no field 'bogus'" in str(app.screen.query_one("#filter-help").render())
        await pilot.press("escape")
        assert column_texts(table, 0) == ["10"]  # the previous filter stays


async def test_stats_off_shows_stats_off():
    app = BpftopApp([FakeBpfCollector(stats=False)], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#bpf-table", TopTable)
        await wait_rows(pilot, table, 3)
        assert set(column_texts(table, 4)) == {"off"}
        label = str(app.screen.query_one("#bpf-history-label").render())
        assert "now stats off" in label


async def test_legible_at_80x24():
    app = BpftopApp([FakeBpfCollector()], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#bpf-table", TopTable)
        await wait_rows(pilot, table, 3)
        await pilot.pause(0.3)
        # All three rows and the detail pane's history and first lines fit.
        assert table.region.height >= 5
        detail = app.screen.query_one("#bpf-detail")
        assert detail.region.height >= 4 and detail.region.bottom <= 24
        summary = str(app.screen.query_one(".tab-summary").render())
        assert "stats on (sysctl)" in summary
