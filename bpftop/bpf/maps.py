"""Reading BPF maps through BCC, and decoding what they hold."""

from __future__ import annotations

import os
from typing import Any, Container, Iterable, List, Sequence, Tuple


def items(table: Any) -> List[Tuple[Any, Any]]:
    """Every (key, value) of a map, in one batch where the kernel can."""
    try:
        return list(table.items_lookup_batch())
    except Exception:
        # Kernels before 5.6 have no batch lookups: one lookup per key.
        out = []
        for key in list(table.keys()):
            try:
                out.append((key, table.getvalue(key)))
            except KeyError:
                pass  # deleted between listing and lookup
        return out


def drop_exited(table: Any, pids: Iterable[int], keep: Container[int] = ()) -> List[int]:
    """Delete the entries of processes that have exited (and are not in
    ``keep``) from a map keyed by pid; returns the pids dropped."""
    dropped = []
    for pid in pids:
        if pid in keep or os.path.exists(f"/proc/{pid}"):
            continue
        try:
            del table[table.Key(pid)]
        except KeyError:
            pass
        dropped.append(pid)
    return dropped


def key_int(key: Any) -> int:
    """A map key as an int (BCC hands scalar keys as ctypes values)."""
    return int(getattr(key, "value", key))


def percpu_total(table: Any, index: int = 0) -> int:
    """The sum over CPUs of one slot of a per-CPU array (a counter)."""
    return int(sum(table.getvalue(table.Key(index))))


def sum_fields(values: Iterable[Any], fields: Sequence[str]) -> Tuple[int, ...]:
    """Per-CPU copies of one struct, each field summed over the CPUs."""
    totals = [0] * len(fields)
    for v in values:
        for i, name in enumerate(fields):
            totals[i] += getattr(v, name)
    return tuple(totals)


def comm(raw: bytes) -> str:
    """A task's comm (a NUL-padded char[16]) as text; bytes that are not
    UTF-8 stay visible as replacement characters."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
