"""The collection loop: snapshots every interval, back-off on read errors,
switching probes, clean stop; and the app's exception path detaching real programs."""

import threading
import time

import pytest
from bpfprogs import ours, prog_ids, prog_list, wait_until_gone
from fakes import FakeCollector, snapshot
from testenv import scaled
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.collectors.capabilities import Capabilities
from bpftop.collectors.syscalls import SyscallsCollector
from bpftop.loop import CollectionLoop
from bpftop.model import CollectorState


class Flaky(FakeCollector):
    """Fails its second read, then recovers."""

    def _read(self):
        self.collects += 1
        if self.collects == 2:
            raise OSError("map vanished")
        return snapshot(self.collects)


class SlowStart(FakeCollector):
    """Takes ``seconds`` to come up, as a compile does."""

    tab = "disk"

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def start(self):
        time.sleep(self.seconds)
        return super().start()


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_loop_delivers_snapshots_and_stops_the_collector():
    got = threading.Event()
    snaps = []
    collector = FakeCollector()
    loop = CollectionLoop([collector], 0.1, on_interval=lambda s: (snaps.extend(s), got.set()))
    loop.start()
    assert got.wait(5)
    loop.stop()
    assert not loop.alive and collector.stopped
    assert snaps[0][0] == "syscalls" and snaps[0][1].rows


def test_a_collector_is_reported_starting_before_it_runs():
    """The tab says "compiling and attaching" while it compiles, not
    "waiting for the collector" until it runs."""
    statuses = []
    loop = CollectionLoop([FakeCollector()], 0.1, on_interval=lambda s: None, on_status=statuses.append)
    loop.start()
    deadline = time.monotonic() + 10
    while not any(s.state is CollectorState.RUNNING for s in statuses) and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    states = [s.state for s in statuses]
    assert states[:2] == [CollectorState.STARTING, CollectorState.RUNNING], states


def test_read_error_is_reported_and_retried():
    statuses, snaps = [], []
    collector = Flaky()
    loop = CollectionLoop([collector], 0.1, on_interval=snaps.extend, on_status=statuses.append)
    loop.start()
    deadline = time.monotonic() + 10
    while len(snaps) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    states = [s.state for s in statuses]
    assert CollectorState.ERROR in states
    assert states[states.index(CollectorState.ERROR) + 1] is CollectorState.RUNNING
    assert "map vanished" in next(s.message for s in statuses if s.state is CollectorState.ERROR)
    assert len(snaps) >= 2


def test_read_error_backs_off_and_doubles():
    """Each failed read waits longer before the next try (1 s, 2 s, ...),
    while a healthy collector in the same loop reads every interval."""

    class Broken(FakeCollector):
        tab = "disk"

        def _read(self):
            self.collects += 1
            raise OSError("bad fd")

    broken, healthy = Broken(), FakeCollector()
    statuses, batches = [], []
    loop = CollectionLoop([healthy, broken], 0.1, on_interval=batches.append, on_status=statuses.append)
    loop.start()
    assert wait(lambda: broken.collects >= 2)
    loop.stop()
    errors = [s.message for s in statuses if s.state is CollectorState.ERROR]
    assert errors[:2] == [
        "read failed (OSError: bad fd); retrying in 1s",
        "read failed (OSError: bad fd); retrying in 2s",
    ]
    # Between the two failed reads (about 1 s) the healthy one read on.
    assert len(batches) >= 8 and all(tab == "syscalls" for batch in batches for tab, _ in batch)


def test_failed_start_reports_and_the_others_go_on():
    statuses, snaps = [], []
    failing = FakeCollector(fail="no hook")
    failing.tab = "disk"
    loop = CollectionLoop([FakeCollector(), failing], 0.1, on_interval=snaps.extend, on_status=statuses.append)
    loop.start()
    assert wait(lambda: len(snaps) >= 3)
    loop.stop()
    failed = [s for s in statuses if s.tab == "disk"]
    assert failed[-1].state is CollectorState.FAILED and "no hook" in failed[-1].message
    assert {tab for tab, _ in snaps} == {"syscalls"}


def test_a_compile_does_not_stall_the_other_tabs():
    """A probe switched on compiles in a thread of its own: the tabs already
    running read on every interval meanwhile."""
    batches = []
    slow = SlowStart(1.5)
    loop = CollectionLoop([FakeCollector(), slow], 0.1, on_interval=batches.append, enabled={"syscalls"})
    loop.start()
    assert wait(lambda: len(batches) >= 2)
    loop.set_enabled("disk", True)
    switched = time.monotonic()
    time.sleep(1.0)
    during = list(batches)
    assert wait(lambda: any(tab == "disk" for b in batches for tab, _ in b))
    came_up = time.monotonic() - switched
    loop.stop()
    assert came_up >= 1.4
    assert len(during) >= 2 + 5  # about ten intervals of 0.1 s passed during the compile


def test_the_tab_on_screen_starts_first_and_one_shown_meanwhile_next():
    """Compiles go one at a time: the tab the operator looks at goes first,
    and a tab shown during start-up is next (a thread per collector raced
    for the compile lock, and the tab on screen often came up last)."""
    order = []

    class Recorded(FakeCollector):
        def __init__(self, tab):
            super().__init__()
            self.tab = tab

        def start(self):
            order.append(self.tab)
            time.sleep(0.2)
            return super().start()

    loop = CollectionLoop([Recorded(t) for t in ("syscalls", "disk", "tcp", "cache")], 0.1,
                          on_interval=lambda batch: None)
    loop.prefer("cache")
    loop.start()
    assert wait(lambda: len(order) >= 1)
    loop.prefer("tcp")
    assert wait(lambda: len(order) == 4)
    loop.stop()
    assert order == ["cache", "tcp", "syscalls", "disk"]


def test_a_tab_switched_off_before_its_turn_never_starts_and_says_so():
    first = SlowStart(0.5)
    later = FakeCollector()
    loop = CollectionLoop([first, later], 0.1, on_interval=lambda batch: None)
    loop.prefer("disk")
    loop.start()
    loop.set_enabled("syscalls", False)  # while disk compiles
    assert wait(lambda: first.running)
    assert wait(lambda: later.status.state is CollectorState.DISABLED)
    loop.stop()
    assert later.starts == 0


def test_switching_off_detaches_and_on_again_resumes():
    statuses, snaps = [], []
    collector = FakeCollector()
    loop = CollectionLoop([collector], 0.1, on_interval=snaps.extend, on_status=statuses.append)
    loop.start()
    assert wait(lambda: len(snaps) >= 1)
    loop.set_enabled("syscalls", False)
    assert wait(lambda: collector.stopped)
    assert not loop.is_enabled("syscalls")
    assert statuses[-1].state is CollectorState.DISABLED
    time.sleep(0.3)
    count = len(snaps)
    time.sleep(0.3)
    assert len(snaps) == count  # nothing read while off
    loop.set_enabled("syscalls", True)
    assert wait(lambda: len(snaps) > count)
    loop.stop()
    assert collector.starts == 2 and collector.stopped


def test_a_collector_switched_off_at_start_says_so():
    statuses = []
    collector = FakeCollector()
    loop = CollectionLoop([collector], 0.1, on_interval=lambda s: None, on_status=statuses.append, enabled=())
    loop.start()
    time.sleep(0.3)
    loop.stop()
    assert collector.starts == 0
    assert statuses and statuses[0].state is CollectorState.DISABLED


def test_interval_change_wakes_the_loop():
    snaps = []
    loop = CollectionLoop([FakeCollector()], 60, on_interval=snaps.extend)
    loop.start()
    time.sleep(0.2)
    loop.interval = 0.1
    deadline = time.monotonic() + 3
    while not snaps and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    assert snaps


class Walker(FakeCollector):
    """A tab not read while another is on screen, as the BPF tab's walk is not."""

    tab = "bpf"
    CAPABILITIES = Capabilities(read_while_hidden=False)


def test_a_hidden_tab_that_says_so_is_read_once_then_only_when_shown():
    """Not at the next beat, a second later: at once."""
    beats = []
    shown, walker = FakeCollector(), Walker()
    loop = CollectionLoop([shown, walker], 1.0, on_interval=lambda s: beats.append([tab for tab, _ in s]))
    loop.show("syscalls")
    loop.start()
    assert wait(lambda: len(beats) >= 3)
    # Its first reading (the console's first data from every tab), then none.
    assert beats[:3] == [["syscalls", "bpf"], ["syscalls"], ["syscalls"]]
    loop.show("bpf")
    assert wait(lambda: len(beats) >= 4, 0.5)
    assert beats[3] == ["bpf"]
    assert wait(lambda: len(beats) >= 5)
    assert beats[4] == ["syscalls", "bpf"]  # on screen: every beat
    loop.show("syscalls")  # shown again: read at the last beat, so nothing at once
    time.sleep(0.3)
    assert len(beats) == 5
    # Switched off and on again: read once more, hidden or not.
    loop.set_enabled("bpf", False)
    assert wait(lambda: loop.is_enabled("bpf") is False and walker.stopped)
    count = len(beats)
    loop.set_enabled("bpf", True)
    assert wait(lambda: ["syscalls", "bpf"] in beats[count:], 5.0)
    count = len(beats)
    assert wait(lambda: len(beats) >= count + 2, 5.0)
    loop.stop()
    assert beats[count:count + 2] == [["syscalls"], ["syscalls"]]


def test_without_a_tab_shown_every_tab_is_read_every_interval():
    """Headless, the exporter and a console that records never say which
    tab is shown."""
    shown, walker = FakeCollector(), Walker()
    loop = CollectionLoop([shown, walker], 0.1, on_interval=lambda s: None)
    loop.start()
    assert wait(lambda: shown.collects >= 10)
    loop.stop()
    assert walker.collects >= shown.collects - 1 >= 9


def test_run_in_the_callers_thread_counts_intervals():
    """Headless runs the loop in its own thread: ``count`` intervals, each
    after one interval of collecting, then back to the caller."""
    collector = FakeCollector()
    collector.start()
    batches = []
    started = time.monotonic()
    loop = CollectionLoop([collector], 0.2, on_interval=batches.append)
    assert loop.run(3) == 3
    took = time.monotonic() - started
    assert len(batches) == 3 and 0.55 <= took < 2.0
    assert not collector.stopped  # the caller detaches, in its finally


@pytest.mark.bpf
async def test_exception_in_the_ui_detaches_real_programs():
    before = prog_ids()
    collector = SyscallsCollector()
    armed = threading.Event()

    class Buggy(BpftopApp):
        def on_interval_ready(self, message):
            if armed.is_set():
                raise RuntimeError("a bug in a view")
            super().on_interval_ready(message)

    app = Buggy([collector], interval=0.2)
    with pytest.raises(RuntimeError, match="a bug in a view"):
        async with app.run_test() as pilot:
            # The compile starts after the first frame: wait for it with the app running.
            await wait_for(pilot, lambda: bool(ours(prog_list(), before)), timeout=scaled(30))
            armed.set()
            for _ in range(50):  # the next snapshot raises and ends the app
                await pilot.pause(0.1)
    assert not collector.running
    assert wait_until_gone(before) == []
