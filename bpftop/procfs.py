"""/proc read each interval with as few syscalls as it takes: the console's
own syscalls show on its own Syscalls tab.

- ``KeptFile``: a file the kernel makes whole at each read from its start
  (``/proc/meminfo``), kept open and read with one pread(2) at offset 0.
  Python's ``open()`` and a read took eight calls (openat, fstat, the
  ioctl of isatty, lseek, three reads, close).
- ``live_pids()``: which processes are alive, from one listing of /proc
  shared by every collector in a beat, in place of a stat of
  ``/proc/PID`` for each process in each table (15 to 30 a second on an
  idle machine, thousands on a busy one).
"""

from __future__ import annotations

import os
import threading
import time
from typing import FrozenSet, Iterable, List, Optional, Tuple

# A listing this recent answers for "alive": the collectors read one after
# another within a few ms of the beat.
LISTING_S = 0.25
_CHUNK = 65536


class KeptFile:
    """One /proc file, opened once. For files the kernel produces in one
    piece on a read from offset 0 (a seq_file with a single record, as
    meminfo is; a sysctl), where a read shorter than asked is the whole
    file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._lock = threading.Lock()

    def read(self) -> bytes:
        """The file's contents now; OSError when it cannot be read."""
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                parts: List[bytes] = []
                offset = 0
                while True:
                    part = os.pread(self._fd, _CHUNK, offset)
                    parts.append(part)
                    offset += len(part)
                    if len(part) < _CHUNK:
                        return b"".join(parts)
            except OSError:
                self._close()
                raise

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close()


_listing: Tuple[float, FrozenSet[int]] = (float("-inf"), frozenset())
_proc_fd: Optional[int] = None


def live_pids() -> FrozenSet[int]:
    """The processes /proc lists, at most LISTING_S old."""
    global _listing, _proc_fd
    at, pids = _listing
    now = time.monotonic()
    if now - at > LISTING_S:
        # Listed through a kept fd (os.listdir dups and rewinds it): an open
        # of /proc each second showed the console on its own Processes tab,
        # and woke the tab's event thread for it.
        if _proc_fd is None:
            _proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        pids = frozenset(int(name) for name in os.listdir(_proc_fd) if name.isdigit())
        _listing = (now, pids)
    return pids


def exited(pids: Iterable[int]) -> List[int]:
    """Those of ``pids`` that have exited. A process the listing lacks is
    looked for once more: it may have started after the listing was made.
    Nothing to check lists nothing (the Processes tab's look every few
    reads, the TCP tab's fold, with no process in them)."""
    wanted = list(pids)
    if not wanted:
        return []
    listed = live_pids()
    return [pid for pid in wanted if pid not in listed and not os.path.exists(f"/proc/{pid}")]
