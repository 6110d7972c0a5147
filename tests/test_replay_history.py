"""Graph history lives in one place (the app's model): after a replay seek
the disk and cache graphs hold the recording's points up to the position,
in order, and nothing from before the jump."""

import time
from dataclasses import replace

from test_cache_ui import cache_snapshot
from test_disk_ui import disk_snapshot
from textual.widgets import Sparkline

from bpftop.app import BpftopApp
from bpftop.model.history import Series
from bpftop.recording.file import Recorder, header, read
from bpftop.recording.replay import RecordedTab, Replay
from bpftop.tabs import TABS, new_history
from bpftop.widgets.cache_hitplot import HitRatioPlot

INTERVALS = 12


def record(path):
    """A recording whose snapshots were taken when they were written, each
    interval's disk IOPS its own (120 + i), as a live run makes them."""
    rec = Recorder(str(path), lambda: header(["disk", "cache"], 1.0, {"disk": "fake", "cache": "fake"}, {}))
    for i in range(INTERVALS):
        now = time.time()
        rec.write_many([("disk", replace(disk_snapshot(i), taken_at=now)),
                        ("cache", replace(cache_snapshot(i), taken_at=now))])
        time.sleep(0.03)
    rec.close()


def expected(replay, tab):
    """The taken_at of every recorded snapshot of ``tab`` up to the position."""
    return [f.snapshot.taken_at for f in replay.frames if f.tab == tab and f.t <= replay.now]


def check_graphs(app, replay):
    disk = app.history.series("disk", "vda")
    cache = app.history.series("cache", "read_hit_pct")
    for series, tab in ((disk, "disk"), (cache, "cache")):
        times = series.times()
        assert times == expected(replay, tab)
        assert times == sorted(times) and len(set(times)) == len(times)
        assert not times or times[-1] <= replay.now
    # What the widgets draw is that series, nothing kept of their own.
    plot = app.screen.query_one("#cache-plot", HitRatioPlot)
    assert [t for t, _ in plot.points] == cache.times()
    iops = [v[0] for v in disk.values()]
    assert iops == [120.0 + i for i in range(len(iops))]


async def test_replay_seek_rebuilds_the_graph_history(tmp_path):
    path = tmp_path / "r.bpftop"
    record(path)
    replay = Replay(read(str(path)))
    assert len(replay.ticks) == INTERVALS
    tabs = [RecordedTab(t, TABS[t].title, "fake") for t in TABS if t in replay.tabs]
    app = BpftopApp(tabs, interval=1.0, replay=replay, initial_tab="cache")
    async with app.run_test(size=(110, 32)) as pilot:
        await pilot.press("p")  # stop playing: the keys move it from here
        await pilot.press("j")
        await pilot.press("plus", "9", "9", "9", "enter")  # +999: the last tick
        await pilot.pause(0.1)
        assert replay.position == INTERVALS - 1
        check_graphs(app, replay)
        assert len(app.history.series("disk", "vda")) == INTERVALS
        middle = replay.time_at(4)
        await pilot.press("j")
        text = f"{middle - replay.time_at(0) + 0.0001:.4f}"
        await pilot.press("plus", *[{".": "full_stop"}.get(c, c) for c in text], "enter")  # back to the fifth tick
        await pilot.pause(0.1)
        assert replay.position == 4
        check_graphs(app, replay)
        assert len(app.history.series("cache", "read_hit_pct")) == 5
        await pilot.press("b", "b")  # two back, then three on
        check_graphs(app, replay)
        await pilot.press("n", "n", "n")
        assert replay.position == 5
        check_graphs(app, replay)
        await pilot.press("1")  # the disk tab: its sparkline ends with the series
        await pilot.pause(0.2)
        spark = app.screen.query_one("#disk-iops", Sparkline)
        assert list(spark.data)[-6:] == [120.0 + i for i in range(6)]


def test_a_point_from_another_timeline_starts_the_series_over():
    series = Series(span_s=300.0)
    for t in (10.0, 11.0, 12.0):
        series.append(t, t)
    series.append(5.0, 5.0)  # earlier than what it holds: never mixed in
    assert series.times() == [5.0]
    history = new_history()
    history.feed("cache", replace(cache_snapshot(0), taken_at=1.0))
    history.feed("cache", replace(cache_snapshot(1), taken_at=2.0))
    assert history.series("cache", "read_hit_pct").times() == [1.0, 2.0]
    history.clear()
    assert not history.series("cache", "read_hit_pct")
