"""Reading BPF maps through BCC."""

from __future__ import annotations

from typing import Any, List, Tuple


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
