"""Run a ground-truth test on every rung of a collector's ladder that this
kernel offers: the one the ladder chooses and each other one that loads.

On the host (no kprobes, fentry refused) that is the tracepoint rungs; in
the kernel-matrix guests (Debian's 6.1 and 6.12) the kprobe and fentry rungs
too. A rung whose feature check says it cannot work here is skipped with
that reason; a rung that passes its check must load and count right.
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterator, List, Tuple

import pytest


def short(name: str) -> str:
    """A test id from a rung name: "kprobes (counts calls, ...)" -> "kprobes"."""
    return re.sub(r"[^a-z0-9]+", "-", name.split(" (")[0].lower()).strip("-")


def rung_params(factory: Callable[[], object], count: int) -> List[object]:
    """One pytest param per rung, named after it where the ladder can be
    built at collection time (it reads tracefs and kallsyms: root), else
    ``count`` numbered ones (the tests then skip without root anyway)."""
    try:
        names = [s.name for s in factory().strategies()]  # type: ignore[attr-defined]
    except Exception:
        names = []
    if not names:
        names = [f"rung{i}" for i in range(count)]
    return [pytest.param(i, id=short(n)) for i, n in enumerate(names)]


def force(collector, index: int):
    """Keep only rung ``index`` of ``collector``'s ladder; skip when this
    kernel does not offer it. Returns the strategy; start the collector with
    ``start``."""
    strategies = collector.strategies()
    if index >= len(strategies):
        pytest.skip(f"the ladder has {len(strategies)} rungs here")
    s = strategies[index]
    why = s.check()
    if why:
        pytest.skip(f"{s.name}: not on this kernel: {why}")
    collector.strategies = lambda: [s]
    return s


def start(collector) -> None:
    """Start a collector forced to one rung; skip when that rung does not
    load on this kernel (a verifier or compiler refusal doctor also shows)."""
    from bpftop.errors import NoStrategyError

    try:
        collector.start()
    except NoStrategyError as exc:
        pytest.skip(f"does not load on this kernel: {exc}")


@contextlib.contextmanager
def on_rung(collector, index: int) -> Iterator[Tuple[object, frozenset]]:
    """``collector`` forced to rung ``index`` and started (skipped where this
    kernel lacks the rung or it does not load); yields the strategy and the
    program ids from before. Stopped afterwards, when none of the programs
    it loaded may stay in the kernel."""
    from bpfprogs import prog_ids, wait_until_gone

    s = force(collector, index)
    before = frozenset(prog_ids())
    start(collector)
    try:
        yield s, before
    finally:
        collector.stop()
    assert wait_until_gone(before) == []
