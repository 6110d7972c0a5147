"""The syscalls collector's kernel counters and the rows made of them:
per-CPU values summed, then the interval's difference per syscall and per
process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Tuple

from ..bpf import maps
from ..model import ProcessRow, SyscallRow
from ..model.common import Counters
from . import syscall_names


@dataclass(frozen=True)
class Counter(Counters):
    """One syscall's cumulative kernel counters, summed over CPUs."""

    count: int = 0
    errors: int = 0
    total_ns: int = 0
    timed: int = 0


def sum_percpu(values: Iterable[Any]) -> Counter:
    return Counter(*maps.sum_fields(values, ("count", "errors", "total_ns", "timed")))


def syscall_rows(
    current: Mapping[int, Counter],
    previous: Mapping[int, Counter],
    nr_syscalls: int,
    latency: bool,
    namer: Callable[[int], str] = syscall_names.name,
) -> Tuple[SyscallRow, ...]:
    """Rows for the syscalls called in the interval, busiest first."""
    rows = []
    for nr, cur in current.items():
        before = previous.get(nr)
        if before is not None and cur.count <= before.count:
            continue  # not called this interval: most of them, on a quiet machine
        delta = cur.minus(before or Counter())
        if delta.count <= 0:
            continue
        label = namer(nr) if nr < nr_syscalls else "(other)"
        rows.append(
            SyscallRow(
                syscall=label,
                nr=nr,
                count=delta.count,
                errors=delta.errors,
                total_ns=delta.total_ns if latency else None,
                timed=delta.timed if latency else 0,
            )
        )
    rows.sort(key=lambda r: (-r.count, r.syscall))
    return tuple(rows)


def process_rows(
    current: Mapping[int, Tuple[int, str]], previous: Mapping[int, int]
) -> Tuple[ProcessRow, ...]:
    rows = [
        ProcessRow(pid, comm, count - previous.get(pid, 0))
        for pid, (count, comm) in current.items()
        if count - previous.get(pid, 0) > 0
    ]
    rows.sort(key=lambda r: (-r.count, r.pid))
    return tuple(rows)
