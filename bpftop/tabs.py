"""The tabs bpftop has: id, title, collector, and plain-text and JSON forms.

No Textual here, so ``--once`` and ``doctor`` stay light; the TUI maps tab
ids to views in app.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence

from . import jsonout, tables
from .collectors.base import Collector


@dataclass(frozen=True)
class TabSpec:
    id: str
    title: str
    make_collector: Callable[..., Collector]
    to_text: Callable[[Any], str]
    to_dict: Callable[[Any], Dict[str, Any]]


def _syscalls(pids: Sequence[int] = (), latency: bool = True) -> Collector:
    from .collectors.syscalls import SyscallsCollector

    return SyscallsCollector(pids=pids, latency=latency)


TABS: Dict[str, TabSpec] = {
    "syscalls": TabSpec("syscalls", "Syscalls", _syscalls, tables.syscalls_text, jsonout.syscalls_dict),
}
# Ids the interface contract reserves for tabs still to come.
PLANNED = ("disk", "tcp", "cache", "bpf")
