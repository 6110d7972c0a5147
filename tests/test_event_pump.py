"""How the event pump's thread waits, with a stand-in for BCC's BPF object
(no BPF, no root): in epoll per event, or a read every POLL_MS that a
drain cuts short."""

import contextlib
import os
import select
import threading
import time

import pytest

from bpftop.collectors import event_pump
from bpftop.collectors.event_pump import Batching, EventPump


class FakeBPF:
    """Records how the pump reads: ``poll`` stands for epoll (returns at
    once, as under a steady stream of events), ``consume`` for a read of
    what is there."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def _note(self, what):
        with self.lock:
            self.calls.append(what)

    def __getitem__(self, name):
        assert name == b"events"
        return self

    def open_ring_buffer(self, cb):
        self.cb = cb

    def open_perf_buffer(self, cb, page_cnt, lost_cb):
        self.cb = cb

    def ring_buffer_poll(self, timeout):
        self._note("poll")
        time.sleep(0.001)

    def perf_buffer_poll(self, timeout):
        self._note("poll")
        time.sleep(0.001)

    def ring_buffer_consume(self):
        self._note("consume")

    def perf_buffer_consume(self):
        self._note("consume")


@pytest.mark.parametrize(
    "batching, ring, batched",
    [
        (Batching.NEVER, True, False),
        (Batching.RING, True, True),
        (Batching.RING, False, False),  # per-CPU perf pages would not hold POLL_MS of a storm
        (Batching.ALWAYS, False, True),
    ],
)
def test_the_thread_waits_in_epoll_or_reads_every_poll_ms(batching, ring, batched):
    bpf = FakeBPF()
    pump = EventPump("t", lambda data: None, 1, 8, 1, batching=batching)
    pump.open(bpf, ring)
    assert pump.batched is batched
    start = time.monotonic()
    pump.start(bpf)
    time.sleep(0.3)
    pump.stop()
    elapsed = time.monotonic() - start
    polls, consumes = bpf.calls.count("poll"), bpf.calls.count("consume")
    if batched:
        # One read every POLL_MS at most, and never a wait in epoll.
        assert polls == 0 and 0 < consumes <= elapsed / (event_pump.POLL_MS / 1000) + 2, bpf.calls
    else:
        assert polls > 0 and consumes == 0, (polls, consumes)


def test_a_drain_wakes_a_batched_thread_at_once(monkeypatch):
    # A read a minute: only the drain's wake-up can make the thread read.
    monkeypatch.setattr(event_pump, "POLL_MS", 60_000)
    bpf = FakeBPF()
    pump = EventPump("t", lambda data: None, 1, 8, 1, batching=Batching.RING)
    pump.open(bpf, True)
    pump.start(bpf)
    try:
        for _ in range(3):
            before = len(bpf.calls)
            pump.drain()
            assert len(bpf.calls) > before, "the drain returned without a read"
    finally:
        pump.stop()


class GatedBPF(FakeBPF):
    """A ring buffer stood in for by an eventfd inside a real epoll
    instance: writing to it is data arriving, a consume reads it all."""

    def __init__(self):
        super().__init__()
        self.data = os.eventfd(0, os.EFD_NONBLOCK)
        self.epoll = select.epoll()
        self.epoll.register(self.data, select.EPOLLIN)

    def ring_buffer_consume(self):
        self._note("consume")
        with contextlib.suppress(BlockingIOError):
            n = os.eventfd_read(self.data)
            for _ in range(min(n, 1000)):
                self.cb(None, None, 0)  # counted as read, fed nothing (size 0)

    def close(self):
        self.epoll.close()
        os.close(self.data)


@pytest.fixture
def gated(monkeypatch):
    """Starts a pump on a GatedBPF, gathering ``gather_ms``."""
    made = []

    def start(gather_ms=event_pump.GATHER_MS):
        monkeypatch.setattr(event_pump, "GATHER_MS", gather_ms)
        bpf = GatedBPF()
        monkeypatch.setattr(event_pump.ringbuf, "epoll_fd", lambda _bpf: bpf.epoll.fileno())
        pump = EventPump("t", lambda data: None, 1, 8, 1, batching=Batching.RING)
        pump.open(bpf, True)
        pump.start(bpf)
        made.append((bpf, pump))
        return bpf, pump

    yield start
    for bpf, pump in made:
        pump.stop()
        bpf.close()


def test_a_gated_reader_sleeps_while_nothing_comes_and_gathers_what_does(gated):
    bpf, _pump = gated()
    time.sleep(0.3)
    assert bpf.calls == []  # no wake-up at all without data
    os.eventfd_write(bpf.data, 1)
    deadline = time.monotonic() + 5
    while "consume" not in bpf.calls and time.monotonic() < deadline:
        time.sleep(0.005)
    assert bpf.calls == ["consume"]  # the first event after a quiet spell is read at once
    # An event every millisecond for 0.4 s: read in batches, one per GATHER_MS at most.
    del bpf.calls[:]
    start = time.monotonic()
    while time.monotonic() - start < 0.4:
        os.eventfd_write(bpf.data, 1)
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    reads = bpf.calls.count("consume")
    assert 0 < reads <= elapsed / (event_pump.GATHER_MS / 1000) + 2, (reads, elapsed)
    assert "poll" not in bpf.calls


def test_a_gated_reader_reads_back_to_back_in_a_storm_and_at_once_for_a_drain(gated):
    bpf, pump = gated(gather_ms=60_000)  # only BUSY or a drain can make it read again
    os.eventfd_write(bpf.data, event_pump.BUSY)  # a storm's worth in one read
    deadline = time.monotonic() + 5
    while bpf.calls.count("consume") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)
    # The first read at once (nothing read for a while), the second right
    # after it without waiting (it found BUSY events), then it gathers.
    assert bpf.calls == ["consume", "consume"]
    os.eventfd_write(bpf.data, 1)
    time.sleep(0.2)
    assert bpf.calls == ["consume", "consume"]  # gathering, for a minute here
    for _ in range(3):
        n = len(bpf.calls)
        pump.drain()  # the event written above, or the one below, waits
        assert len(bpf.calls) > n, "the drain returned without a read"
        # Nothing waits: the thread is not woken, and nothing is read.
        n = len(bpf.calls)
        pump.drain()
        pump.drain()
        assert len(bpf.calls) == n
        os.eventfd_write(bpf.data, 1)
