"""The kernel-side key filter every collector shares (processes, ports,
disks): a mode word and a set of keys in BPF maps, rewritten at run time,
never recompiled. The C side is bpftop/bpf/keyfilter.h."""

from __future__ import annotations

import ctypes
from typing import Any, Iterable, Optional, Tuple, Type

# As KF_ALL, KF_ONLY, KF_EXCEPT in keyfilter.h.
MODE_ALL, MODE_ONLY, MODE_EXCEPT = 0, 1, 2


def normalise(keys: Iterable[object], what: str, low: int, high: int, limit: int) -> Tuple[int, ...]:
    """Sorted distinct integers in low..high, at most ``limit`` of them;
    ValueError naming ``what`` otherwise."""
    out = []
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int):
            raise ValueError(f"{what} must be an integer, not {key!r}")
        if not low <= key <= high:
            raise ValueError(f"{what} {key} is out of range ({low}..{high})")
        out.append(key)
    out = sorted(set(out))
    if len(out) > limit:
        raise ValueError(f"at most {limit} {what}s can be filtered in the kernel, got {len(out)}")
    return tuple(out)


class KeyFilter:
    """Only these keys, or all but them; no keys means all.

    Subclasses say what a key is (``what``, its range, the most the kernel
    map holds). ``set`` checks everything before it changes anything.
    """

    what = "key"
    low, high = 0, 2**32 - 1
    limit = 1024

    def __init__(self, keys: Iterable[int] = (), exclude: bool = False) -> None:
        self.keys = self.normalise(keys)
        self.exclude = exclude and bool(self.keys)
        self._mode: Optional[Any] = None
        self._set: Optional[Any] = None
        self._slot = 0
        self._mode_type: Type[Any] = ctypes.c_uint32

    def normalise(self, keys: Iterable[object]) -> Tuple[int, ...]:
        return normalise(keys, self.what, self.low, self.high, self.limit)

    @property
    def mode(self) -> int:
        if not self.keys:
            return MODE_ALL
        return MODE_EXCEPT if self.exclude else MODE_ONLY

    def admits(self, key: int) -> bool:
        """Whether the kernel counts this key under the filter."""
        return not self.keys or (key in self.keys) != self.exclude

    def bind(self, mode_map: Any, key_map: Any, slot: int = 0, mode_type: Type[Any] = ctypes.c_uint32) -> None:
        """Attach to a freshly loaded program's maps and write the filter:
        the mode is ``mode_map[slot]`` (a ``mode_type``), the keys are
        ``key_map``'s."""
        self._mode, self._set, self._slot, self._mode_type = mode_map, key_map, slot, mode_type
        self._write()

    def unbind(self) -> None:
        """The program is gone: keep the filter, write nowhere."""
        self._mode = self._set = None

    def set(self, keys: Iterable[int], exclude: bool = False) -> None:
        self.keys = self.normalise(keys)
        self.exclude = exclude and bool(self.keys)
        if self._mode is not None:
            self._write()

    def _write(self) -> None:
        assert self._mode is not None and self._set is not None
        # Open everything up first, then narrow: while the set is being
        # rewritten the program sees "all", never a half-written "only".
        slot = ctypes.c_int(self._slot)
        self._mode[slot] = self._mode_type(MODE_ALL)
        self._set.clear()
        for key in self.keys:
            self._set[self._set.Key(key)] = self._set.Leaf(1)
        self._mode[slot] = self._mode_type(self.mode)
