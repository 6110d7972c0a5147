"""A program's event buffer read into a callback: the map ``events``, a
ring buffer (5.8 on) or a perf buffer where the kernel has none.

Events are read in a thread of the pump's own, so a burst is taken off the
buffer as it comes rather than once an interval. How the thread waits is
the pump's ``batching``:
- ``Batching.NEVER``: in epoll, woken by the kernel for each event the
  thread has not caught up with. At a few thousand events a second that is
  a wake-up, a poll call and a loop in Python for every one or two events.
- ``Batching.RING``: a ring buffer is read in batches. The thread waits
  in poll(2) on libbpf's epoll fd (none of BCC's poll calls, which read at
  once), then gathers until GATHER_MS after its last read: no wake-up at
  all on an idle machine, at most 50 reads a second under load, and reads
  back to back from BUSY events a read. Where that fd cannot be had, it
  reads every POLL_MS. A perf buffer, a few pages per CPU, still wakes it
  per event.
- ``Batching.ALWAYS``: batches whatever the buffer, gathering POLL_MS (a
  perf buffer: read every POLL_MS): the program bounds its own event rate
  (the TCP program).
``drain()`` makes sure that everything the kernel sent up to now has been
fed (a collect() or a filter change starts from there); it wakes a waiting
thread at once. Without the thread (``threaded=False``: tests with a
one-page buffer that lose events on purpose) ``drain()`` reads in the
caller's thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
import select
import threading
import time
from typing import Any, Callable, Optional

from ..bpf import ringbuf

POLL_MS = 50
# A ring buffer's reader, woken by data, gathers this long after its last
# read before the next (the Processes program's 4 MiB hold 12,000 opens:
# 20 ms of a storm of 600,000 a second).
GATHER_MS = 20
# Events in one batched read from which the thread reads again without
# waiting (10,000 a second and more).
BUSY = 500


class Batching(enum.Enum):
    NEVER = "never"
    RING = "ring"
    ALWAYS = "always"


def buffer_pages(n: int, what: str) -> int:
    """``n``, checked: a ring or perf buffer's size is a power of two pages."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n & (n - 1):
        raise ValueError(f"{what} must be a power of two, not {n!r}")
    return n


class EventPump:
    """Feeds each event of at least ``min_size`` bytes, cut to ``max_size``,
    to ``feed``; counts the perf buffer's own lost records in
    ``perf_lost`` (the ring buffer has none: the programs count what they
    could not reserve)."""

    def __init__(self, name: str, feed: Callable[[bytes], None], min_size: int, max_size: int,
                 perf_pages: int, threaded: bool = True, batching: Batching = Batching.NEVER) -> None:
        self.name = name
        self.perf_pages = perf_pages
        self.threaded = threaded
        self.batching = batching
        self.perf_lost = 0
        self.ring = False
        self._feed = feed
        self._min, self._max = min_size, max_size
        self._bpf: Any = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._drain_req = threading.Event()
        self._drain_done = threading.Event()
        self._wake = threading.Event()  # batched: a drain wants the thread now
        self._wake_fd: Optional[int] = None  # the same for a thread waiting in poll(2)
        self._read = 0  # events the last batched read took off the buffer
        # Whether the thread waits in poll(2) on the ring buffer's epoll fd.
        self.gated = False
        self._gate: Optional[int] = None

    @property
    def batched(self) -> bool:
        """Whether the thread reads in batches (else at each event, in epoll)."""
        return self.batching is Batching.ALWAYS or (self.batching is Batching.RING and self.ring)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def open(self, bpf: Any, ring: bool) -> None:
        """Open ``bpf``'s buffer (while the program loads: a rung whose
        buffer cannot open does not load)."""
        self._bpf = bpf
        if ring:
            bpf[b"events"].open_ring_buffer(self._on_ring_event)
        else:
            bpf[b"events"].open_perf_buffer(self._on_perf_event, page_cnt=self.perf_pages,
                                             lost_cb=self._on_perf_lost)
        self.ring = ring

    def start(self, bpf: Any) -> None:
        """Read in the pump's thread from now on (when ``threaded``)."""
        self._bpf = bpf
        if self.threaded:
            self._stop.clear()
            if self._wake_fd is None:
                self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._thread = threading.Thread(target=self._poll_loop, args=(bpf,), name=f"{self.name}-events",
                                            daemon=True)
            self._thread.start()

    def drain(self) -> None:
        """Everything the kernel sent up to now has gone to ``feed``."""
        if self._thread is not None and self._thread.is_alive():
            gate = self._gate
            if gate is not None and not select.select([gate], [], [], 0)[0]:
                # Nothing waits in the ring buffer, so the thread has fed
                # every event: libbpf moves the consumer position past an
                # event only once its callback has returned. One call here,
                # where waking the thread and waiting for it took six.
                return
            self._drain_done.clear()
            self._drain_req.set()
            self._wake_up()
            self._drain_done.wait(5.0)
        elif self._bpf is not None:
            self._consume(self._bpf)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake_up()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        if self._wake_fd is not None and (thread is None or not thread.is_alive()):
            os.close(self._wake_fd)
            self._wake_fd = None
        self._bpf = None

    def _wake_up(self) -> None:
        self._wake.set()
        if self._wake_fd is not None:
            os.eventfd_write(self._wake_fd, 1)

    # -- in the pump's thread (or the caller's, without one) -------------
    def _on_ring_event(self, _ctx: Any, data: Any, size: int) -> int:
        self._read += 1
        if size >= self._min:
            self._feed(ctypes.string_at(data, min(size, self._max)))
        return 0

    def _on_perf_event(self, _cpu: int, data: Any, size: int) -> None:
        self._read += 1
        if size >= self._min:
            self._feed(ctypes.string_at(data, min(size, self._max)))

    def _on_perf_lost(self, count: int) -> None:
        self.perf_lost += count

    def _consume(self, bpf: Any) -> None:
        if self.ring:
            bpf.ring_buffer_consume()
        else:
            bpf.perf_buffer_consume()

    def _poll_loop(self, bpf: Any) -> None:
        gate = ringbuf.epoll_fd(bpf) if self.batched and self.ring and self._wake_fd is not None else None
        self.gated = gate is not None
        self._gate = gate
        if gate is not None:
            self._gated_loop(bpf, gate)
            return
        batched = self.batched
        while not self._stop.is_set():
            if batched:
                # A read that found a storm's worth reads again at once: a
                # pause after it would let the buffer fill (the Processes
                # program lost 2,270 of 30,000 opens in a tight loop).
                if self._read < BUSY:
                    self._wake.wait(POLL_MS / 1000)
                    self._wake.clear()
                if self._stop.is_set():
                    break
                self._read = 0
                self._consume(bpf)
            elif self.ring:
                bpf.ring_buffer_poll(POLL_MS)
            else:
                bpf.perf_buffer_poll(POLL_MS)
            if self._drain_req.is_set():
                self._consume(bpf)
                self._drain_req.clear()
                self._drain_done.set()
        self._drain_done.set()  # nobody waits for a drain that will not come

    def _gated_loop(self, bpf: Any, gate: int) -> None:
        """Batched reads of a ring buffer that wait for data in poll(2) on
        libbpf's epoll fd: no wake-up at all while nothing comes, and at
        most one read every GATHER_MS (POLL_MS: ALWAYS) while something
        does."""
        assert self._wake_fd is not None
        poller = select.poll()
        poller.register(gate, select.POLLIN)
        poller.register(self._wake_fd, select.POLLIN)
        last = 0.0
        # A program that bounds its own rate cannot fill its buffer: POLL_MS.
        gather = (POLL_MS if self.batching is Batching.ALWAYS else GATHER_MS) / 1000
        while not self._stop.is_set():
            if self._read < BUSY:
                poller.poll()  # data, a drain or stop
                pause = last + gather - time.monotonic()
                if pause > 0 and not self._drain_req.is_set():
                    self._wake.wait(pause)
                self._wake.clear()
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
            if self._stop.is_set():
                break
            self._read = 0
            self._consume(bpf)
            last = time.monotonic()
            if self._drain_req.is_set():
                self._consume(bpf)
                self._drain_req.clear()
                self._drain_done.set()
        self._gate = None
        self._drain_done.set()
