"""The epoll fd behind BCC's ring buffers, so an event thread can wait for
data without reading it at once (collectors/event_pump.py)."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Optional


def epoll_fd(bpf: Any) -> Optional[int]:
    """The epoll fd of ``bpf``'s ring buffers (libbpf's
    ``ring_buffer__epoll_fd``, looked up through libbcc so that it is the
    libbpf that made them), or None where that cannot be had for sure."""
    manager = getattr(bpf, "_ringbuf_manager", None)
    if not manager:
        return None
    try:
        from bcc.libbcc import lib

        fn = lib.ring_buffer__epoll_fd
    except (ImportError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p]
    fd = int(fn(manager))
    try:
        # Anything but an epoll instance means another libbpf's layout.
        if fd < 0 or os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:[eventpoll]":
            return None
    except OSError:
        return None
    return fd
