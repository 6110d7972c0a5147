"""The recording file: gzip-compressed JSON Lines.

The first line is a header (format name and version, host, kernel, bpftop
version, interval, tabs, hooks, filters); every other line holds one
snapshot of one tab, or ``{"hooks": {tab: hook}}`` when a collector came up
after the header was written. The compressor is flushed with Z_SYNC_FLUSH after every
interval, so everything written so far decodes even when the process dies
mid-write: a crash loses at most the interval being written. One zlib
stream per session keeps the file small (consecutive snapshots look alike);
``--record-append`` adds a new gzip member with its own header, which
gzip tools read as one file.

Files are created new (O_EXCL) and never opened through a symlink.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from typing import Any, Callable, Dict, Sequence, Tuple

from .codec import encode_snapshot
from .format import FORMAT, VERSION, RecordingError, RecordingLost, header
from .reader import Frame, Limits, Recording, read

# Readers and writers of recordings import from here.
__all__ = ["FORMAT", "VERSION", "Frame", "Limits", "Recorder", "Recording", "RecordingError", "RecordingLost",
           "header", "read"]


class Recorder:
    """Appends snapshots; thread-safe (the console writes from the collection loop's thread)."""

    def __init__(self, path: str, header_fn: Callable[[], Dict[str, Any]], append: bool = False) -> None:
        """``header_fn`` is asked for the header when the first snapshot
        arrives, so it can name the hooks the collectors settled on."""
        self.path = path
        self.header_fn = header_fn
        self._lock = threading.Lock()
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_CREAT
        if append:
            flags |= os.O_APPEND
            if os.path.exists(path) and os.path.getsize(path) > 0:
                read(path, max_records=0)  # refuse to append to something that is not ours
        else:
            flags |= os.O_EXCL
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as e:
            if os.path.islink(path):
                raise RecordingError(f"{path} is a symlink: recordings are never written through one") from None
            if isinstance(e, FileExistsError):
                raise RecordingError(
                    f"{path} exists: bpftop never overwrites a recording (--record-append adds to it)"
                ) from None
            raise RecordingError(f"cannot write {path}: {e.strerror or e}") from None
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._started = False
        # Each tab's last snapshot written: the next is stored as a change.
        self._previous: Dict[str, Any] = {}
        self._hooks: Dict[str, str] = {}
        self.records = 0
        self.bytes = 0

    def write(self, tab: str, snapshot: Any) -> None:
        """One snapshot; flushed at once so a crash cannot take it along."""
        self.write_many([(tab, snapshot)])

    def write_many(self, snapshots: Sequence[Tuple[str, Any]]) -> None:
        now = time.time()
        with self._lock:
            if self._fd < 0:
                return
            lines = []
            if not self._started:
                head = self.header_fn()
                lines.append(head)
                self._hooks = dict(head.get("hooks", {}))
                self._started = True
            for tab, snap in snapshots:
                hook = getattr(snap, "hook", "")
                if hook and self._hooks.get(tab) != hook:
                    # A collector that came up (or changed rung) after the
                    # header was written: the session's hooks grow.
                    lines.append({"hooks": {tab: hook}})
                    self._hooks[tab] = hook
                lines.append({"tab": tab, "t": now, "snap": encode_snapshot(snap, self._previous.get(tab))})
                self._previous[tab] = snap
            text = "".join(json.dumps(line, separators=(",", ":"), allow_nan=True) + "\n" for line in lines)
            self._write_all(self._z.compress(text.encode("utf-8")) + self._z.flush(zlib.Z_SYNC_FLUSH))
            self.records += len(snapshots)

    def _write_all(self, data: bytes) -> None:
        """All of ``data`` or nothing: on a failed write (a full disk) the
        file is cut back to the end of the last whole interval, closed, and
        the error raised, so what was written stays replayable."""
        good = self.bytes
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError as e:
                self._abandon(good)
                raise RecordingLost(
                    f"cannot write {self.path}: {e.strerror or e}; the {self.records} snapshots before are kept",
                    e.strerror or str(e),
                ) from None
            view = view[n:]
            self.bytes += n

    def _abandon(self, good: int) -> None:
        try:
            os.ftruncate(self._fd, good)
        except OSError:
            pass  # a part-written block at the end reads as "ends mid-record"
        self.bytes = good
        os.close(self._fd)
        self._fd = -1

    def close(self) -> None:
        """Finish the file; raises RecordingLost when the end could not be
        written (the snapshots before it stay readable)."""
        with self._lock:
            if self._fd < 0:
                return
            self._write_all(self._z.flush(zlib.Z_FINISH))
            try:
                os.fsync(self._fd)
            except OSError as e:
                raise RecordingLost(f"cannot write {self.path}: {e.strerror or e}", e.strerror or str(e)) from None
            finally:
                os.close(self._fd)
                self._fd = -1
