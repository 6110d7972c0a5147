"""Drives one collector in a background thread: start (compile + attach, off
the UI thread), then a snapshot every interval, until told to stop.

Plain Python: the TUI, ``--once`` and headless modes all use it and hand in
callbacks. A failed read is reported and retried with back-off; a collector
whose whole ladder failed reports why and stays stopped.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from .collectors.base import Collector
from .errors import BpftopError
from .model import CollectorState, CollectorStatus

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
MAX_BACKOFF = 30.0


def clamp_interval(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, float(seconds)))


class CollectorRunner:
    def __init__(
        self,
        collector: Collector,
        interval: float,
        on_snapshot: Callable[[Any], None],
        on_status: Callable[[CollectorStatus], None] = lambda s: None,
        enabled: bool = True,
    ) -> None:
        self.collector = collector
        self._interval = clamp_interval(interval)
        self._on_snapshot = on_snapshot
        self._on_status = on_status
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._enabled = enabled
        self._thread: Optional[threading.Thread] = None

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        self._interval = clamp_interval(seconds)
        self._wake.set()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        """Switch the probe off (its programs are detached, the thread
        idles) or on again (compiled and attached anew)."""
        self._enabled = bool(on)
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"collector-{self.collector.tab}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the thread and detach the collector's programs.

        If the thread is still compiling when asked to stop, it detaches as
        soon as the compile returns; this waits up to ``timeout`` for that.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.collector.stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _report(self) -> None:
        self._on_status(self.collector.status)

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when asked to stop or switched off."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and self._enabled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake.wait(left)
            if self._wake.is_set():
                self._wake.clear()
                # A new interval starts counting from when it was set.
                deadline = min(deadline, time.monotonic() + self._interval)
        return True

    def _wait_enabled(self) -> bool:
        """Idle while switched off; False when asked to stop."""
        while not self._enabled and not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
        return not self._stop.is_set()

    def _run(self) -> None:
        collector = self.collector
        while True:
            if not self._enabled:
                collector.stop()
                collector.set_status(CollectorState.DISABLED, "switched off by the operator")
                self._report()
            if not self._wait_enabled():
                return
            if not self._start():
                return
            if self._stop.is_set():
                return
            self._collect_until_off()
            if self._stop.is_set():
                return

    def _start(self) -> bool:
        """Compile and attach; False when that failed for good."""
        collector = self.collector
        try:
            collector.start()
        except BpftopError:
            self._report()
            return False
        except Exception as exc:  # pragma: no cover - reported, never raised into the UI
            collector.set_status(CollectorState.FAILED, f"{type(exc).__name__}: {exc}")
            self._report()
            return False
        finally:
            if self._stop.is_set():
                collector.stop()
        if not self._stop.is_set():
            self._report()
        return True

    def _collect_until_off(self) -> None:
        collector = self.collector
        backoff = 1.0
        while not self._sleep(self._interval):
            try:
                snapshot = collector.collect()
            except Exception as exc:
                if self._stop.is_set() or not self._enabled:
                    break
                collector.set_status(CollectorState.ERROR, f"read failed ({exc}); retrying in {backoff:.0f}s")
                self._report()
                if self._sleep(backoff):
                    break
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            if collector.status.state is CollectorState.ERROR:
                collector.set_status(CollectorState.RUNNING)
                self._report()
            backoff = 1.0
            self._on_snapshot(snapshot)
