"""Reading BPF maps through BCC."""

from __future__ import annotations

import os
from typing import Any, Container, Iterable, List, Tuple


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
