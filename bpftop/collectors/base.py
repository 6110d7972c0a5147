"""What every collector has: a hook ladder, a loaded BPF object, declared
capabilities and the typed filter methods they promise, a status, and a
``collect()`` that returns a frozen snapshot.

Collectors are plain Python and never import Textual; the collection loop
calls them from its threads, so start/collect/stop are serialised by a lock.
"""

from __future__ import annotations

import abc
import threading
from typing import Any, ClassVar, Dict, Generic, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from ..bpf import ladder, loader, system
from ..bpf.stats import program_stats
from ..model import CollectorState, CollectorStatus, HookAttempt
from ..model.common import STARTING_MESSAGE
from .capabilities import Capabilities, EventFilter, KernelField
from .keyfilter import KeyFilter

S = TypeVar("S")
# A filter value as the filter syntax gives it (pids and ports are ints,
# disk and operation names text); each filter checks its own.
FilterValue = Union[int, float, str]


class Collector(abc.ABC, Generic[S]):
    tab: ClassVar[str]
    title: ClassVar[str]
    CAPABILITIES: ClassVar[Capabilities] = Capabilities()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._bpf: Any = None
        self._strategy: Optional[ladder.Strategy] = None
        self._status = CollectorStatus(self.tab, CollectorState.STOPPED)
        # The map-backed filters by field; subclasses add theirs and bind
        # them to the maps in _on_loaded.
        self.key_filters: Dict[KernelField, KeyFilter] = {}

    # -- subclasses -------------------------------------------------------
    @abc.abstractmethod
    def strategies(self) -> List[ladder.Strategy]:
        """The hook ladder, best rung first."""

    @abc.abstractmethod
    def _read(self) -> S:
        """Turn the maps into a snapshot (called with the lock held)."""

    def _on_loaded(self) -> None:
        """Called with the lock held once a rung has loaded."""

    def _baseline(self) -> None:
        """Start a new interval now (with the lock held, the program
        loaded): counts made under another filter are not the operator's
        to see."""

    def _set_kernel_filter(self, field: KernelField, values: Sequence[FilterValue], exclude: bool) -> None:
        """Check and write one kernel filter (lock held); ValueError, and
        nothing changed, on a value it cannot take. By default the field's
        KeyFilter."""
        self.key_filters[field].set(values, exclude)  # type: ignore[arg-type]  # KeyFilter checks the type

    def _set_event_filter(self, flt: EventFilter) -> None:
        raise ValueError(f"the {self.title} collector filters no events in user space")

    # -- optional probes ---------------------------------------------------------
    def optional_probes(self) -> Dict[str, bool]:
        """Parts of this collector switched on and off at run time on their
        own (the syscalls collector's latency), by name: on or off."""
        return {}

    def optional_programs(self) -> Dict[str, str]:
        """Program name -> the optional probe it belongs to. Such a program
        is attached at most once (at its probe's first switch-on) and the
        probe's switch decides what it does: attaching and detaching at each
        switch took Debian's 6.12 kernel down in the matrix's guests."""
        return {}

    def set_optional_probe(self, name: str, on: bool) -> None:
        """Switch one optional probe; the collector's other programs run on.
        ValueError on a name it does not have."""
        raise ValueError(f"the {self.title} collector has no optional probe {name!r}")

    # -- run-time filters ------------------------------------------------------
    def set_kernel_filter(self, field: KernelField, values: Iterable[FilterValue], exclude: bool = False) -> None:
        """Only these values of ``field`` (or all but them with ``exclude``;
        none: no filter), applied in the kernel through BPF maps, no
        recompiling. The counts start again. ValueError, and nothing
        changes, on a value the filter cannot take or a field this
        collector does not filter in the kernel (CAPABILITIES)."""
        if field not in self.CAPABILITIES.kernel_filters:
            raise ValueError(f"the {self.title} collector has no kernel-side {field} filter")
        given = (values,) if isinstance(values, str) else tuple(values)
        with self._lock:
            self._set_kernel_filter(field, given, exclude)
            if self._bpf is not None:
                # A probe on another CPU may have passed the old filter and
                # not yet counted: the baseline waits for it, or its count
                # would land in the new filter's first interval.
                system.wait_for_running_programs()
                self._baseline()

    def set_event_filter(self, flt: EventFilter) -> None:
        """The user-space filter on each event (CAPABILITIES.event_filters);
        the counts start again. ValueError, and nothing changes, on a bad
        regex or address."""
        if not self.CAPABILITIES.event_filters:
            raise ValueError(f"the {self.title} collector filters no events in user space")
        with self._lock:
            self._set_event_filter(flt)

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
            self.set_status(CollectorState.STARTING, STARTING_MESSAGE)
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

    def probe_all(self, try_all: bool = True) -> List[HookAttempt]:
        """Try every rung (or, without ``try_all``, those up to the first
        that loads) and release each again (for ``bpftop doctor``)."""
        result = ladder.climb(self.strategies(), try_all=try_all, release=loader.close_program)
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
            for key_filter in self.key_filters.values():
                key_filter.unbind()
            try:
                loader.close_program(bpf)
            finally:
                self.set_status(CollectorState.STOPPED)
