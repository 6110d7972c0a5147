"""BPF run-time statistics: how often each of our programs ran and how long
it took in the kernel.

The kernel counts only while statistics are enabled. BPF_ENABLE_STATS gives
a file descriptor that keeps them enabled for as long as it is open, so the
previous setting comes back by itself when bpftop exits, however it exits.
Kernels without that command fall back to the ``kernel.bpf_stats_enabled``
sysctl, which is restored on close. The counts per program are in its
info (BPF_OBJ_GET_INFO_BY_FD), and in ``/proc/self/fdinfo`` of its file
descriptor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from dataclasses import dataclass
from typing import Dict, Optional

from . import system

_BPF_ENABLE_STATS = 32
_BPF_STATS_RUN_TIME = 0
# The bpf(2) system call's number, for the commands BCC has no wrapper for.
SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_SYSCTL = "kernel.bpf_stats_enabled"


@dataclass(frozen=True)
class ProgramStats:
    prog_id: int
    run_cnt: int
    run_time_ns: int
    # Times the kernel did not run the program because a BPF program was
    # already running on that CPU (its recursion guard); None when this
    # kernel's program info has no such counter. Counted whether or not
    # run-time statistics are enabled.
    recursion_misses: Optional[int] = None


def stats_enabled() -> Optional[bool]:
    """Whether kernel.bpf_stats_enabled is 1; None when this kernel has no
    such sysctl. It reads only what was written to it: statistics are also
    on while any process holds a BPF_ENABLE_STATS fd, which it does not show."""
    value = system.read_sysctl(_SYSCTL)
    return None if value is None else value.strip() == "1"


def program_stats(fd: int) -> Optional[ProgramStats]:
    """Counters of the program behind one of our file descriptors: from
    its info (one bpf(2) call), else from its fdinfo (an open, a read of
    twenty lines and a close: a third of the Disk tab's read each interval)."""
    from . import objinfo  # which imports this module

    try:
        return ProgramStats(*objinfo.prog_counters(fd))
    except OSError:  # BpfError too
        pass
    fields: Dict[str, int] = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                key, _, value = line.partition(":")
                value = value.strip()
                if key in ("prog_id", "run_cnt", "run_time_ns", "recursion_misses") and value.isdigit():
                    fields[key] = int(value)
    except OSError:
        return None
    if "prog_id" not in fields:
        return None
    return ProgramStats(
        fields["prog_id"], fields.get("run_cnt", 0), fields.get("run_time_ns", 0), fields.get("recursion_misses")
    )


class StatsSwitch:
    """Keeps BPF run-time statistics on while open; ``close()`` (or exit)
    restores what was there before."""

    def __init__(self, sysctl_fallback: bool = True) -> None:
        # Without the fallback only the fd is tried: the BPF tab never
        # writes the sysctl, so no exit path (SIGKILL included) can leave
        # statistics on behind it.
        self.sysctl_fallback = sysctl_fallback
        self.fd: Optional[int] = None
        self.previous_sysctl: Optional[str] = None
        self.how = ""
        self.error = ""

    def open(self) -> bool:
        if self.fd is not None or self.previous_sysctl is not None:
            return True
        fd = self._enable_stats_fd()
        if fd >= 0:
            self.fd, self.how = fd, "BPF_ENABLE_STATS (released on exit)"
            return True
        if not self.sysctl_fallback:
            err = ctypes.get_errno()
            self.error = f"BPF_ENABLE_STATS refused: {os.strerror(err) if err else 'no bpf(2) on this machine'}"
            return False
        previous = system.read_sysctl(_SYSCTL)
        if previous is None:
            self.error = "this kernel has neither BPF_ENABLE_STATS nor kernel.bpf_stats_enabled"
            return False
        if previous.strip() == "1":
            self.how = "kernel.bpf_stats_enabled was already 1"
            return True
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("1")
        except OSError as e:
            self.error = f"cannot enable kernel.bpf_stats_enabled: {e.strerror}"
            return False
        self.previous_sysctl, self.how = previous.strip(), "kernel.bpf_stats_enabled=1 (restored on exit)"
        return True

    @property
    def holding_fd(self) -> bool:
        return self.fd is not None

    @staticmethod
    def _enable_stats_fd() -> int:
        nr = SYS_BPF.get(platform.machine())
        if nr is None:
            return -1
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        attr = (ctypes.c_uint32 * 4)(_BPF_STATS_RUN_TIME, 0, 0, 0)
        return int(libc.syscall(nr, _BPF_ENABLE_STATS, ctypes.byref(attr), ctypes.sizeof(attr)))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.previous_sysctl is not None:
            try:
                with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                    f.write(self.previous_sysctl)
            except OSError:
                pass
            self.previous_sysctl = None
