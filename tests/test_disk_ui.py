"""The Disk tab driven by Pilot with scripted snapshots (no BPF, no root)."""

import itertools
import time

from fakes import FakeCollector
from textual.widgets import Sparkline
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.model.disk import NSLOTS, DiskRow, DiskSnapshot, OpStats
from bpftop.screens.help import HelpScreen
from bpftop.views.disk import DiskView
from bpftop.widgets.top_table import TopTable


def hist(**slots):
    h = [0] * NSLOTS
    for k, v in slots.items():
        h[int(k[1:])] = v
    return tuple(h)


def disk_snapshot(seq=0):
    vda = DiskRow("vda", "254:0", (
        OpStats("read", 100 + seq, 409600, 100 + seq, 5_000_000, 120_000, hist(s6=90 + seq, s7=10)),
        OpStats("write", 20, 81920, 20, 2_000_000, 2_000_000, hist(s11=20)),
    ), in_flight=1)
    sdb = DiskRow("sdb", "8:16", (OpStats("read", 5, 20480, 5, 100_000, 30_000, hist(s5=5)),))
    return DiskSnapshot(
        interval_s=1.0, taken_at=time.time(), rows=(vda, sdb), cumulative=(vda, sdb), cumulative_s=5.0, hook="fake",
    )


class FakeDiskCollector(FakeCollector):
    tab = "disk"
    title = "Disk"
    hook_points = ("block:x",)

    def __init__(self):
        super().__init__(snapshots=(disk_snapshot(i) for i in itertools.count()))





async def test_disk_tab_table_histogram_keys_and_series():
    disk = FakeDiskCollector()
    app = BpftopApp([FakeCollector(), disk], interval=0.1, initial_tab="disk")
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.screen.query_one(DiskView)
        table = app.screen.query_one("#disk-table", TopTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["vda", "sdb"]
        lines = view.histogram_lines()
        assert lines[0] == "vda all ops, this interval"
        assert any(line.split()[:3] == ["32", "->", "63"] for line in lines)
        assert any(line.split()[:3] == ["1024", "->", "2047"] for line in lines)

        await pilot.press("o")  # read only: the 1-2 ms writes are gone
        assert view.op == "read"
        lines = view.histogram_lines()
        assert lines[0].startswith("vda read") and not any("1024" in line for line in lines[2:])
        await pilot.press("m")
        assert view.unit == "ms" and "P50 ms" in table.labels[5]
        await pilot.press("c")
        assert "since start" in view.histogram_lines()[0]

        await pilot.press("down")  # select the second disk
        await wait_for(pilot, lambda: view.selected == "sdb")
        assert view.histogram_lines()[0].startswith("sdb read")

        await wait_for(pilot, lambda: len(view.history.get("vda")) >= 3)
        spark = app.screen.query_one("#disk-iops", Sparkline)
        assert spark.data and spark.data[-1] > 0
    assert disk.stopped


async def test_disk_help_lists_tab_keys_and_exactness():
    app = BpftopApp([FakeCollector(), FakeDiskCollector()], interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "Disk tab" in text and "microseconds / milliseconds" in text and "factor of 2" in text


async def test_disk_tab_tiny_terminal():
    app = BpftopApp([FakeDiskCollector()], interval=0.1)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause(0.3)
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)


async def test_a_hidden_tab_is_not_redrawn_and_shows_the_latest_snapshot_when_shown():
    disk = FakeDiskCollector()
    app = BpftopApp([FakeCollector(), disk], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.screen.query_one(DiskView)
        drawn = []
        original = view.render_snapshot
        view.render_snapshot = lambda snap: (drawn.append(snap), original(snap))[1]
        await wait_for(pilot, lambda: view.snapshot is not None and view.snapshot.rows[0].ops[0].ios >= 105)
        assert drawn == []  # five intervals and more while the syscalls tab is shown
        await pilot.press("2")
        await wait_for(pilot, lambda: len(drawn) >= 1)
        # The first drawing on show is the newest snapshot, not a queue of old ones.
        assert drawn[0].rows[0].ops[0].ios >= 105
        table = app.screen.query_one("#disk-table", TopTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("1")
        await pilot.pause(0.3)
        seen = len(drawn)
        await pilot.pause(0.3)
        assert len(drawn) == seen
