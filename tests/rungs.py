"""Run a ground-truth test on every rung of a collector's ladder that this
kernel offers: the one the ladder chooses and each other one that loads.

On the host (no kprobes, fentry refused) that is the tracepoint rungs; in
the kernel-matrix guests (Debian's 6.1 and 6.12) the kprobe and fentry rungs
too. A rung whose feature check says it cannot work here is skipped with
that reason; a rung that passes its check must load and count right. The
tests get the rung's started collector from the session's shared ones
(tests/shared.py: one compile per rung and options per session).
"""

from __future__ import annotations

import re
from typing import Callable, List

import pytest


def short(name: str) -> str:
    """A test id from a rung name: "kprobes (counts calls, ...)" -> "kprobes"."""
    return re.sub(r"[^a-z0-9]+", "-", name.split(" (")[0].lower()).strip("-")


def rung_params(factory: Callable[[], object], count: int,
                in_matrix: Callable[[str], bool] = lambda name: False) -> List[object]:
    """One pytest param per rung, named after it where the ladder can be
    built at collection time (it reads tracefs and kallsyms: root), else
    ``count`` numbered ones (the tests then skip without root anyway). The
    rungs ``in_matrix`` says yes to are marked ``matrix`` (a test marked as
    a whole runs every rung there)."""
    try:
        names = [s.name for s in factory().strategies()]  # type: ignore[attr-defined]
    except Exception:
        names = []
    if not names:
        names = [f"rung{i}" for i in range(count)]
    return [pytest.param(i, id=short(n), marks=[pytest.mark.matrix] if in_matrix(n) else [])
            for i, n in enumerate(names)]
