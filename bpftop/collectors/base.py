"""What every collector has: a hook ladder, a loaded BPF object, a run-time
process filter, a status, and a ``collect()`` that returns a frozen snapshot.

Collectors are plain Python and never import Textual; the collection loop
calls them from its threads, so start/collect/stop are serialised by a lock.
"""

from __future__ import annotations

import abc
import threading
from typing import Any, ClassVar, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar

from ..bpf import ladder, loader
from ..bpf.stats import program_stats
from ..model import CollectorState, CollectorStatus, HookAttempt

S = TypeVar("S")


class Collector(abc.ABC, Generic[S]):
    tab: ClassVar[str]
    title: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._bpf: Any = None
        self._strategy: Optional[ladder.Strategy] = None
        self._status = CollectorStatus(self.tab, CollectorState.STOPPED)

    # -- subclasses -------------------------------------------------------
    @abc.abstractmethod
    def strategies(self) -> List[ladder.Strategy]:
        """The hook ladder, best rung first."""

    @abc.abstractmethod
    def _read(self) -> S:
        """Turn the maps into a snapshot (called with the lock held)."""

    def _on_loaded(self) -> None:
        """Called with the lock held once a rung has loaded."""

    # -- lifecycle --------------------------------------------------------
    @property
    def status(self) -> CollectorStatus:
        return self._status

    @property
    def running(self) -> bool:
        return self._bpf is not None

    @property
    def hook(self) -> str:
        return self._strategy.name if self._strategy else ""

    def set_status(self, state: CollectorState, message: str = "", attempts: Sequence[HookAttempt] = ()) -> None:
        self._status = CollectorStatus(self.tab, state, tuple(attempts) or self._status.attempts, message)

    def start(self) -> CollectorStatus:
        """Climb the ladder and keep the first rung that loads.

        Raises NoStrategyError (with every rung's reason) when none does and
        PrivilegeError when BPF is not permitted at all.
        """
        with self._lock:
            if self._bpf is not None:
                return self._status
            self.set_status(CollectorState.STARTING, "compiling and attaching")
            try:
                result = ladder.climb(self.strategies())
            except Exception as exc:
                self.set_status(CollectorState.FAILED, str(exc))
                raise
            attempts = tuple(result.attempts)
            try:
                ladder.require(result, f"{self.title} collector")
            except Exception as exc:
                self.set_status(CollectorState.FAILED, str(exc), attempts)
                raise
            self._bpf, self._strategy = result.loaded, result.strategy
            self._on_loaded()
            self.set_status(CollectorState.RUNNING, "", attempts)
            return self._status

    def probe_all(self) -> List[HookAttempt]:
        """Try every rung and release each again (for ``bpftop doctor``)."""
        result = ladder.climb(self.strategies(), try_all=True, release=loader.close_program)
        loader.close_program(result.loaded)
        return result.attempts

    def programs(self) -> List[Tuple[str, int]]:
        """(name, fd) of every BPF program this collector has loaded."""
        with self._lock:
            funcs = getattr(self._bpf, "funcs", None) or {}
            out = []
            for name, fn in funcs.items():
                fd = getattr(fn, "fd", None)
                if isinstance(fd, int) and fd >= 0:
                    out.append((name.decode() if isinstance(name, bytes) else str(name), fd))
            return out

    def recursion_misses(self) -> Dict[str, Optional[int]]:
        """Per program name, how many times the kernel skipped it so far
        (None where the kernel does not count it)."""
        out: Dict[str, Optional[int]] = {}
        for name, fd in self.programs():
            stats = program_stats(fd)
            out[name] = stats.recursion_misses if stats is not None else None
        return out

    def collect(self) -> S:
        with self._lock:
            if self._bpf is None:
                raise RuntimeError(f"{self.tab} collector is not running")
            return self._read()

    def stop(self) -> None:
        """Detach and free everything; safe to call twice and from any thread."""
        with self._lock:
            bpf, self._bpf = self._bpf, None
            try:
                loader.close_program(bpf)
            finally:
                self.set_status(CollectorState.STOPPED)
