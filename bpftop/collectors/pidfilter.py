"""The kernel-side process filter: a KeyFilter of tgids (the maps
filter_mode and filter_pids in each program)."""

from __future__ import annotations

from typing import Iterable, Tuple

from .keyfilter import MODE_ALL, MODE_EXCEPT, MODE_ONLY, KeyFilter
from .keyfilter import normalise as _normalise

__all__ = ["MODE_ALL", "MODE_EXCEPT", "MODE_ONLY", "PidFilter", "normalise"]

MAX_PID = 2**22


def normalise(pids: Iterable[object], limit: int = 1024) -> Tuple[int, ...]:
    return _normalise(pids, "pid", 1, MAX_PID, limit)


class PidFilter(KeyFilter):
    what = "pid"
    low, high = 1, MAX_PID

    @property
    def pids(self) -> Tuple[int, ...]:
        return self.keys
