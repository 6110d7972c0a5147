"""What the live console's title line says after bpftop's name: the host,
its kernel and the interval. Light to import: the first paint draws it
before Textual loads."""

from __future__ import annotations

import platform
import socket


def host_line(interval: float) -> str:
    return f"{socket.gethostname()}  Linux {platform.release()}  interval {interval:g}s"
