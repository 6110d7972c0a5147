"""Screen captures on disk (keys s and S): a header line, then the screen as
plain text. Interval data is a "snapshot" (bpftop.model); a saved screen
is a "capture".

Files are created new and atomically (written under a temporary name, then
linked into place, which fails rather than replace anything), never through
a symlink: the directory is opened with O_NOFOLLOW and every name is
resolved relative to it.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path
from typing import Optional, Sequence

from .safetext import safe, safe_lines


class CaptureError(OSError):
    """The capture could not be written; the message says where and why."""


def default_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "bpftop"


def header(tabs: Sequence[str], interval: float, filters: str, hooks: str, when: Optional[float] = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(when if when is not None else time.time()))
    return (
        f"# bpftop snapshot  host {safe(socket.gethostname())}  kernel {safe(platform.release())}  {stamp}"
        f"  interval {interval:g}s  tab {','.join(tabs)}  filters: {safe(filters or 'none')}"
        f"  hooks: {safe(hooks or 'none')}"
    )


def _open_dir(directory: Path) -> int:
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if os.path.islink(directory):
            raise CaptureError(f"{directory} is a symlink: captures are never written through one") from None
        raise CaptureError(f"cannot use {directory}: {e.strerror or e}") from None


def save(directory: Path, stem: str, text: str, when: Optional[float] = None) -> Path:
    """Write ``text`` to a new file ``stem-YYYYmmdd-HHMMSS.txt`` in
    ``directory`` and return its path; never replaces an existing file."""
    when = time.time() if when is None else when
    text = safe_lines(text)  # a capture is read on a terminal too (cat, less -R)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"
    dir_fd = _open_dir(directory)
    tmp = f".{base}.{os.getpid()}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as e:
            raise CaptureError(f"cannot write in {directory}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            for n in range(1000):
                name = f"{base}.txt" if n == 0 else f"{base}-{n}.txt"
                try:
                    os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise CaptureError(f"cannot write in {directory}: {e.strerror or e}") from None
                os.fsync(dir_fd)
                return directory / name
            raise CaptureError(f"too many captures named {base} in {directory}")
        finally:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
    finally:
        os.close(dir_fd)
