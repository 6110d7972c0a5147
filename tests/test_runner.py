"""The collector runner: snapshots every interval, back-off on read errors,
clean stop; and the app's exception path detaching real programs."""

import threading
import time

import pytest

from bpftop.app import BpftopApp
from bpftop.collectors.syscalls import SyscallsCollector
from bpftop.model import CollectorState
from bpftop.runner import CollectorRunner

from bpfprogs import prog_ids, wait_until_gone, wait_until_loaded
from fakes import FakeCollector, snapshot


class Flaky(FakeCollector):
    """Fails its second read, then recovers."""

    def _read(self):
        self.collects += 1
        if self.collects == 2:
            raise OSError("map vanished")
        return snapshot(self.collects)


def test_runner_delivers_snapshots_and_stops_the_collector():
    got = threading.Event()
    snaps = []
    collector = FakeCollector()
    runner = CollectorRunner(collector, 0.1, on_snapshot=lambda s: (snaps.append(s), got.set()))
    runner.start()
    assert got.wait(5)
    runner.stop()
    assert not runner.alive and collector.stopped


def test_read_error_is_reported_and_retried():
    statuses, snaps = [], []
    collector = Flaky()
    runner = CollectorRunner(collector, 0.1, on_snapshot=snaps.append, on_status=statuses.append)
    runner.start()
    deadline = time.monotonic() + 10
    while len(snaps) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    states = [s.state for s in statuses]
    assert CollectorState.ERROR in states
    assert states[states.index(CollectorState.ERROR) + 1] is CollectorState.RUNNING
    assert "map vanished" in next(s.message for s in statuses if s.state is CollectorState.ERROR)
    assert len(snaps) >= 2


def test_failed_start_reports_and_ends():
    statuses = []
    runner = CollectorRunner(FakeCollector(fail="no hook"), 0.1, on_snapshot=lambda s: None, on_status=statuses.append)
    runner.start()
    runner._thread.join(5)
    assert not runner.alive
    assert statuses[-1].state is CollectorState.FAILED and "no hook" in statuses[-1].message


def test_interval_change_wakes_the_runner():
    snaps = []
    runner = CollectorRunner(FakeCollector(), 60, on_snapshot=snaps.append)
    runner.start()
    time.sleep(0.2)
    runner.interval = 0.1
    deadline = time.monotonic() + 3
    while not snaps and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.stop()
    assert snaps


@pytest.mark.bpf
async def test_exception_in_the_ui_detaches_real_programs():
    before = prog_ids()
    collector = SyscallsCollector()

    class Buggy(BpftopApp):
        def on_snapshot_ready(self, message):
            raise RuntimeError("a bug in a view")

    app = Buggy([collector], interval=0.2)
    with pytest.raises(RuntimeError, match="a bug in a view"):
        async with app.run_test() as pilot:
            assert wait_until_loaded(before)
            for _ in range(50):  # the first snapshot raises and ends the app
                await pilot.pause(0.1)
    assert not collector.running
    assert wait_until_gone(before) == []
