"""A program's event buffer read into a callback: the map ``events``, a
ring buffer (5.8 on) or a perf buffer where the kernel has none.

Events are read in a thread of the pump's own, so a burst is taken off the
buffer as it comes rather than once an interval (or, ``batched``, every
POLL_MS: a program that bounds its own event rate, like the TCP program,
does not need a wake-up per event, which cost more than the event itself);
``drain()`` makes sure that everything the kernel sent up to now has been fed (a collect() or a filter
change starts from there). Without the thread (``threaded=False``: tests
with a one-page buffer that lose events on purpose) ``drain()`` reads in the
caller's thread.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable, Optional

POLL_MS = 50


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
                 perf_pages: int, threaded: bool = True, batched: bool = False) -> None:
        self.name = name
        self.perf_pages = perf_pages
        self.threaded = threaded
        self.batched = batched
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
            self._thread = threading.Thread(target=self._poll_loop, args=(bpf,), name=f"{self.name}-events",
                                            daemon=True)
            self._thread.start()

    def drain(self) -> None:
        """Everything the kernel sent up to now has gone to ``feed``."""
        if self._thread is not None and self._thread.is_alive():
            self._drain_done.clear()
            self._drain_req.set()
            self._wake.set()
            self._drain_done.wait(5.0)
        elif self._bpf is not None:
            self._consume(self._bpf)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._bpf = None

    # -- in the pump's thread (or the caller's, without one) -------------
    def _on_ring_event(self, _ctx: Any, data: Any, size: int) -> int:
        if size >= self._min:
            self._feed(ctypes.string_at(data, min(size, self._max)))
        return 0

    def _on_perf_event(self, _cpu: int, data: Any, size: int) -> None:
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
        while not self._stop.is_set():
            if self.batched:
                self._wake.wait(POLL_MS / 1000)
                self._wake.clear()
                if self._stop.is_set():
                    break
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
