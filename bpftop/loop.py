"""One collection loop for every output: the console, headless (``--once``,
``--json``, ``-b``), recording and, next, the exporter.

One clock: every interval the loop reads each running collector in turn and
hands that interval's snapshots, together, to ``on_interval`` (the sink).
Starting a collector (compile and attach: seconds) and switching one off
(detach) run in a thread of that collector's own, so a probe coming up never
holds up the other tabs' reads. A failed read is reported through
``on_status`` and retried with back-off (1 s, doubling up to 30 s) while
the others read on; a collector whose whole ladder failed reports why and
stays down until it is switched off and on again.

Plain Python, no Textual: the console runs the loop in a thread of its own
(``start``), headless in the caller's thread (``run``), where signals still
reach it and an exception from the sink (a full disk, a closed pipe) ends
the run.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from . import malloc
from .collectors.base import Collector
from .errors import BpftopError
from .model import CollectorState, CollectorStatus
from .model.common import STARTING_MESSAGE, SWITCHED_OFF_MESSAGE

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0

Snapshots = List[Tuple[str, Any]]  # (tab, snapshot), in the loop's tab order
OnInterval = Callable[[Snapshots], None]
OnStatus = Callable[[CollectorStatus], None]

_OFF, _UP, _FAILED = "off", "up", "failed"


def clamp_interval(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, float(seconds)))


def read_error(exc: BaseException) -> str:
    """A read failure in words. BCC raises a bare KeyError when the kernel
    refuses a map lookup, whose name alone says little."""
    text = str(exc)
    if text:
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, KeyError):
        return "a BPF map lookup failed (KeyError)"
    return type(exc).__name__


class _Slot:
    """One collector's place in the loop; its fields change under the loop's lock."""

    def __init__(self, collector: Collector, enabled: bool) -> None:
        self.collector = collector
        self.enabled = enabled
        self.state = _OFF
        self.since = 0.0  # monotonic time it came up: its first interval is not a sliver
        self.backoff = FIRST_BACKOFF
        self.retry_at = 0.0
        self.read_at = float("-inf")  # the beat it was last read at
        self.worker: Optional[threading.Thread] = None
        # What reading it has cost so far (reads, seconds, failed reads),
        # for the exporter's own metrics.
        self.reads = 0
        self.read_seconds = 0.0
        self.read_errors = 0


class CollectionLoop:
    def __init__(
        self,
        collectors: Sequence[Collector],
        interval: float,
        on_interval: OnInterval,
        on_status: OnStatus = lambda status: None,
        enabled: Optional[Iterable[str]] = None,
    ) -> None:
        on = {c.tab for c in collectors} if enabled is None else set(enabled)
        self._slots: Dict[str, _Slot] = {c.tab: _Slot(c, c.tab in on) for c in collectors}
        self._interval = clamp_interval(interval)
        self._on_interval = on_interval
        self._on_status = on_status
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._next = 0.0
        self._preferred: Optional[str] = None
        # The tab on screen (the console's; None: every tab is read every
        # interval), and tabs to read before the next beat.
        self._shown: Optional[str] = None
        self._asap: Set[str] = set()
        self._beat_at = float("-inf")
        # What ended a loop run in its own thread (a bug in a sink), for the caller to see.
        self.error: Optional[BaseException] = None

    # -- settings -------------------------------------------------------------
    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        """Takes effect at once: the next read comes at most one new interval from now."""
        self._interval = clamp_interval(seconds)
        self._wake.set()

    def is_enabled(self, tab: str) -> bool:
        return self._slots[tab].enabled

    def set_enabled(self, tab: str, on: bool) -> None:
        """Switch a probe on (compiled and attached anew, in its own thread)
        or off (its programs detached); the other tabs read on meanwhile."""
        slot = self._slots[tab]
        with self._lock:
            slot.enabled = bool(on)
        self._settle_later(slot)

    @property
    def tabs(self) -> List[str]:
        return list(self._slots)

    def read_costs(self) -> Dict[str, Tuple[int, float, int]]:
        """Per tab, since the loop began: (reads, seconds spent reading, failed reads)."""
        with self._lock:
            return {tab: (s.reads, s.read_seconds, s.read_errors) for tab, s in self._slots.items()}

    # -- running --------------------------------------------------------------
    def start(self) -> None:
        """Bring the enabled collectors up and read them in a thread of the
        loop's own; returns at once. A loop already stopped stays so."""
        if self._stop.is_set():
            return
        self._bring_up()
        self._thread = threading.Thread(target=self._run_in_thread, name="bpftop-collection", daemon=True)
        self._thread.start()

    def run(self, count: Optional[int] = None) -> int:
        """Read in the caller's thread until ``count`` intervals with data
        were handed on (None: until ``stop``); returns how many were."""
        self._bring_up()
        return self._loop(count)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop reading and detach every collector. One still compiling is
        detached as soon as its compile returns; this waits up to
        ``timeout`` for that."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        threads = [self._thread] + [slot.worker for slot in self._slots.values()]
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        for slot in self._slots.values():
            slot.collector.stop()

    # -- switching collectors on and off (worker threads) ---------------------
    def prefer(self, tab: str) -> None:
        """Start ``tab``'s collector next, if it is still waiting: the tab
        on screen goes live first."""
        with self._lock:
            self._preferred = tab

    def show(self, tab: str) -> None:
        """``tab`` is on screen: the others whose capabilities say so
        (``read_while_hidden``) are not read from now on, and ``tab``, if
        it missed the last beat, is read at once."""
        with self._lock:
            self._shown = tab
            slot = self._slots.get(tab)
            stale = slot is not None and slot.read_at < self._beat_at
            if stale:
                self._asap.add(tab)
        if stale:
            self._wake.set()

    def _bring_up(self) -> None:
        now = time.monotonic()
        waiting = []
        for slot in self._slots.values():
            if slot.enabled and slot.collector.running:
                # Started by the caller (headless starts in its own thread
                # to report what cannot run before anything is read).
                slot.state, slot.since = _UP, now
            elif slot.enabled:
                waiting.append(slot)
            else:
                self._report_off(slot)
        if not waiting:
            return
        # One thread starts them one after another, the preferred tab first.
        # Compiles are one at a time anyway (BCC_LOCK); a thread each raced
        # for the lock, and the tab on screen often came up last.
        with self._lock:
            if self._stop.is_set():
                return
            starter = threading.Thread(target=self._start_in_order, args=(waiting,), name="bpftop-start",
                                       daemon=True)
            for slot in waiting:
                slot.worker = starter  # a switch meanwhile is settled by it
        starter.start()

    def _start_in_order(self, waiting: List[_Slot]) -> None:
        while waiting:
            with self._lock:
                slot = next((s for s in waiting if s.collector.tab == self._preferred), waiting[0])
            waiting.remove(slot)
            self._settle(slot)
            with self._lock:
                never_on = not slot.enabled and slot.state == _OFF
            if never_on and not self._stop.is_set():
                self._report_off(slot)  # switched off before its turn came

    def _report_off(self, slot: _Slot) -> None:
        slot.collector.set_status(CollectorState.DISABLED, SWITCHED_OFF_MESSAGE)
        self._on_status(slot.collector.status)

    def _settle_later(self, slot: _Slot) -> None:
        with self._lock:
            if slot.worker is not None or self._stop.is_set():
                return  # the worker there reads ``enabled`` again before it ends
            slot.worker = threading.Thread(
                target=self._settle, args=(slot,), name=f"bpftop-{slot.collector.tab}-switch", daemon=True
            )
            slot.worker.start()

    def _settle(self, slot: _Slot) -> None:
        """Start or stop the collector until it is as asked (the operator
        may switch it again while it compiles)."""
        while True:
            with self._lock:
                want = slot.enabled and not self._stop.is_set()
                if self._stop.is_set() or (want and slot.state != _OFF) or (not want and slot.state == _OFF):
                    slot.worker = None
                    return
                if not want:
                    slot.state = _OFF  # the loop reads it no more from here
            if want:
                self._start_one(slot)
            else:
                slot.collector.stop()
                self._report_off(slot)

    def _start_one(self, slot: _Slot) -> None:
        collector = slot.collector
        # Said at once: the tab shows it for the seconds a compile takes.
        collector.set_status(CollectorState.STARTING, STARTING_MESSAGE)
        self._on_status(collector.status)
        try:
            collector.start()
        except BpftopError:
            state = _FAILED  # the collector's status says why, rung by rung
        except Exception as exc:  # reported in the tab, never raised into the UI
            collector.set_status(CollectorState.FAILED, f"{type(exc).__name__}: {exc}")
            state = _FAILED
        else:
            state = _UP
        malloc.trim()  # what the compile freed goes back to the kernel
        if self._stop.is_set():
            collector.stop()  # stop() may have given up waiting for this compile
            return
        with self._lock:
            slot.state, slot.since = state, time.monotonic()
            slot.backoff, slot.retry_at = FIRST_BACKOFF, 0.0
            slot.read_at = float("-inf")  # a new start is read once, hidden or not
        self._on_status(collector.status)

    # -- reading (the loop's thread) -------------------------------------------
    def _run_in_thread(self) -> None:
        try:
            self._loop(None)
        except BaseException as exc:
            self.error = exc

    def _loop(self, count: Optional[int]) -> int:
        delivered = 0
        self._next = time.monotonic() + self._interval
        while count is None or delivered < count:
            if not self._sleep():
                break
            now = time.monotonic()
            with self._lock:
                early, self._asap = (self._asap if now < self._next else None), set()
            if early is None:
                # A steady beat: the next read one interval after this one
                # was due, unless reading took longer than that.
                self._next = max(self._next + self._interval, now + MIN_INTERVAL / 2)
                self._beat_at = now
            snapshots = self._read_all(now, early)
            if early is not None:
                if snapshots and not self._stop.is_set():
                    self._on_interval(snapshots)  # not a beat: not counted
                continue
            if snapshots and not self._stop.is_set():
                self._on_interval(snapshots)
                delivered += 1
        return delivered

    def _sleep(self) -> bool:
        """Until the next read is due; False when asked to stop."""
        while not self._stop.is_set():
            left = self._next - time.monotonic()
            if left <= 0:
                return True
            if self._wake.wait(left):
                self._wake.clear()
                # A new interval counts from when it was set.
                self._next = min(self._next, time.monotonic() + self._interval)
                with self._lock:
                    if self._asap:
                        return True
        return False

    def _read_all(self, now: float, only: Optional[Set[str]] = None) -> Snapshots:
        """Every tab due at this beat; with ``only``, those of them."""
        out: Snapshots = []
        half = self._interval / 2
        for tab, slot in self._slots.items():
            if only is not None and tab not in only:
                continue
            with self._lock:
                due = (slot.state == _UP and slot.enabled and now >= slot.retry_at - 1e-3
                       and now >= slot.since + half)
                if (due and not slot.collector.CAPABILITIES.read_while_hidden and self._shown not in (None, tab)
                        and slot.read_at > float("-inf")):
                    due = False  # hidden, and read once (the console's first data from every tab)
            if not due:
                continue
            slot.read_at = now
            snapshot = self._read_one(slot, now)
            if snapshot is not None:
                out.append((tab, snapshot))
        return out

    def _read_one(self, slot: _Slot, now: float) -> Any:
        collector = slot.collector
        began = time.monotonic()
        try:
            snapshot = collector.collect()
        except Exception as exc:
            with self._lock:
                slot.reads += 1
                slot.read_seconds += time.monotonic() - began
                if slot.state != _UP or not slot.enabled or self._stop.is_set():
                    return None  # switched off under the read: not an error
                slot.read_errors += 1
                backoff = slot.backoff
                slot.retry_at = now + backoff
                slot.backoff = min(MAX_BACKOFF, backoff * 2)
            collector.set_status(CollectorState.ERROR, f"read failed ({read_error(exc)}); retrying in {backoff:.0f}s")
            self._on_status(collector.status)
            return None
        with self._lock:
            slot.reads += 1
            slot.read_seconds += time.monotonic() - began
            if slot.state != _UP or not slot.enabled:
                return None
            slot.backoff, slot.retry_at = FIRST_BACKOFF, 0.0
        if collector.status.state is CollectorState.ERROR:
            collector.set_status(CollectorState.RUNNING)
            self._on_status(collector.status)
        return snapshot
