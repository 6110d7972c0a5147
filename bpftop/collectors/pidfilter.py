"""The kernel-side process filter every collector shares: a mode word and a
set of tgids in two BPF maps, rewritten at run time (never recompiled)."""

from __future__ import annotations

import ctypes
from typing import Any, Iterable, Optional, Tuple

MODE_ALL, MODE_ONLY, MODE_EXCEPT = 0, 1, 2


def normalise(pids: Iterable[int], limit: int = 1024) -> Tuple[int, ...]:
    out = []
    for pid in pids:
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise ValueError(f"pid must be an integer, not {pid!r}")
        if not 0 < pid < 2**22 + 1:
            raise ValueError(f"pid {pid} is out of range (1..{2**22})")
        out.append(pid)
    out = sorted(set(out))
    if len(out) > limit:
        raise ValueError(f"at most {limit} pids can be filtered in the kernel, got {len(out)}")
    return tuple(out)


class PidFilter:
    def __init__(self, pids: Iterable[int] = (), exclude: bool = False) -> None:
        self.pids = normalise(pids)
        self.exclude = exclude and bool(self.pids)
        self._mode: Optional[Any] = None
        self._set: Optional[Any] = None

    @property
    def mode(self) -> int:
        if not self.pids:
            return MODE_ALL
        return MODE_EXCEPT if self.exclude else MODE_ONLY

    def bind(self, mode_map: Any, pid_map: Any) -> None:
        """Attach to a freshly loaded program's maps and write the filter."""
        self._mode, self._set = mode_map, pid_map
        self._write()

    def set(self, pids: Iterable[int], exclude: bool = False) -> None:
        self.pids = normalise(pids)
        self.exclude = exclude and bool(self.pids)
        if self._mode is not None:
            self._write()

    def _write(self) -> None:
        # Open everything up first, then narrow: while the set is being
        # rewritten the program sees "all", never a half-written "only".
        self._mode[ctypes.c_int(0)] = ctypes.c_uint32(MODE_ALL)
        self._set.clear()
        for pid in self.pids:
            self._set[self._set.Key(pid)] = self._set.Leaf(1)
        self._mode[ctypes.c_int(0)] = ctypes.c_uint32(self.mode)
