"""The recording format's name and version, its header line, and the
errors reading or writing one raises."""

from __future__ import annotations

import platform
import socket
import time
from typing import Any, Dict, Sequence

from .. import __version__
from ..errors import BpftopError

FORMAT = "bpftop-recording"
VERSION = 1


class RecordingError(BpftopError):
    """A recording cannot be written or read; the message says why."""

    exit_code = 2


class RecordingLost(RecordingError):
    """Writing failed mid-run (a full disk): what came before is kept, the
    rest is lost, and the run must not look like it succeeded."""

    exit_code = 3

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # the system's word for it, short enough for a title line


def header(tabs: Sequence[str], interval: float, hooks: Dict[str, str], filters: Dict[str, str]) -> Dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "bpftop": __version__,
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "started": time.time(),
        "interval": interval,
        "tabs": list(tabs),
        "hooks": dict(hooks),
        "filters": dict(filters),
    }
