"""Started collectors shared by the tests of one session.

A rung's compile takes 25-90 s in a kernel-matrix guest (QEMU without
KVM), and several tests check numbers on the same rung with the same
options: each used to compile it again. Here the first test that needs
(collector, options, rung) starts it, every later one reuses it, and the
session's end stops them all and checks that nothing they loaded stays in
the kernel (the check each test made after its own collector's stop).

A test sharing a collector takes a baseline with one ``collect()`` before
its work (every collector reports the window since its last read) and
puts back any filter it set (``pid_filtered``). Tests of start, stop and
"nothing left loaded" keep collectors of their own.

A rung that did not load is remembered with its reason: a later test that
asks for the same collector, options and rung is skipped with that reason
instead of compiling the same program again.

In a kernel-matrix guest (BPFTOP_MATRIX_HOOKS names a file) the rung each
ladder chose with default options is written there, a line "tab<TAB>rung",
for the Tested kernels table: running doctor for it cost each guest six
minutes of compiles the tests make anyway.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pytest

Key = Tuple[str, Tuple[Tuple[str, Any], ...], str]


def _names(s) -> Tuple[str, str]:
    return s.name, s.name.split(" (")[0]


class SharedCollectors:
    def __init__(self) -> None:
        self.started: Dict[Key, Any] = {}
        self.failed: Dict[Key, str] = {}
        self.before: Optional[frozenset] = None
        self.ids: set = set()
        # class name -> what to do before its first collector starts
        self.before_first: Dict[str, Callable[[], None]] = {}
        self.cache_file = ""
        self._before_each: Dict[int, frozenset] = {}
        self._all: List[Any] = []

    def _key(self, cls, opts: Dict[str, Any], rung_name: str) -> Key:
        # With the constructor's defaults filled in: SyscallsCollector() and
        # SyscallsCollector(latency=True) are the same program.
        bound = inspect.signature(cls).bind(**opts)
        bound.apply_defaults()
        return cls.__name__, tuple(sorted((k, repr(v)) for k, v in bound.arguments.items())), rung_name

    def before_of(self, collector) -> frozenset:
        """The program ids loaded before ``collector`` started."""
        return self._before_each[id(collector)]

    def get(self, cls, rung: Union[int, str, None] = None, **opts):
        """A started ``cls(**opts)``: on the rung the ladder chooses
        (``rung`` None), on rung number ``rung``, or on the rung named
        ``rung``. Skips where this kernel lacks the rung or it does not load
        (with the same reasons as before)."""
        probe = cls(**opts)
        strategies = probe.strategies()
        if rung is None:
            return self._default(probe, opts, strategies)
        if isinstance(rung, int):
            if rung >= len(strategies):
                pytest.skip(f"the ladder has {len(strategies)} rungs here")
            s = strategies[rung]
        else:
            found = [s for s in strategies if rung in _names(s)]
            if not found:
                pytest.skip(f"no rung {rung!r} in the ladder here")
            s = found[0]
        why = s.check()
        if why:
            pytest.skip(f"{s.name}: not on this kernel: {why}")
        key = self._key(cls, opts, s.name)
        if key not in self.started:
            self._start(key, probe, [s])
        return self.started[key]

    def _default(self, c, opts: Dict[str, Any], strategies: List[Any]):
        """The ladder's choice: its first rung that this kernel offers and
        that has not failed to load here. Reused when started already;
        otherwise ``c`` (whose ladder ``strategies`` is: a rung loads into
        the collector that made it) climbs from there (rungs already refused
        here are not compiled again)."""
        cls = type(c)
        rest = list(strategies)
        while rest:
            s = rest[0]
            key = self._key(cls, opts, s.name)
            if key in self.started:
                if not opts:
                    _record_choice(c.tab, s.name)
                return self.started[key]
            if key in self.failed or s.check():
                rest.pop(0)
                continue
            break
        self._start(None, c, rest, cls=cls, opts=opts)
        if not opts:
            _record_choice(c.tab, next((s.name for s in rest if c.hook in _names(s)), c.hook))
        return c

    def _start(self, key: Optional[Key], c, ladder: Sequence[Any], cls=None, opts=None) -> None:
        from bpfprogs import loaded_ids, prog_ids

        from bpftop.errors import NoStrategyError

        prepare = self.before_first.pop(type(c).__name__, None)
        if prepare is not None:
            prepare()
        now = frozenset(prog_ids())
        if self.before is None:
            self.before = now
        c.strategies = lambda: list(ladder)
        try:
            c.start()
        except NoStrategyError as exc:
            reason = f"does not load on this kernel: {exc}"
            if key is not None:
                self.failed[key] = reason
            pytest.skip(reason)
        if key is None:
            chosen = [s for s in ladder if c.hook in _names(s)]
            key = self._key(cls, opts, chosen[0].name if chosen else c.hook)
        self.ids |= loaded_ids(c)
        self._before_each[id(c)] = now
        self._all.append(c)
        self.started.setdefault(key, c)

    def close(self) -> None:
        from bpfprogs import loaded_ids, wait_until_gone, wait_until_ids_gone

        started, self._all, self.started = self._all, [], {}
        for c in started:
            self.ids |= loaded_ids(c)  # a filter change may have reloaded
        for c in started:
            c.stop()
        assert wait_until_ids_gone(self.ids) == []
        if self.before is not None:
            assert wait_until_gone(self.before) == []


def _record_choice(tab: str, rung: str) -> None:
    path = os.environ.get("BPFTOP_MATRIX_HOOKS")
    if path:
        with open(path, "a") as f:
            f.write(f"{tab}\t{rung}\n")


@contextlib.contextmanager
def pid_filtered(collector, pids: Sequence[int], exclude: bool = False) -> Iterator[Any]:
    """``collector`` filtered to ``pids`` for the block, unfiltered after
    (the next test sharing it starts from no filter)."""
    collector.set_kernel_filter("pid", list(pids), exclude=exclude)
    try:
        yield collector
    finally:
        collector.set_kernel_filter("pid", [])
