"""What the Processes tab's program needs of the running kernel: the
tracepoints it attaches to, task_struct offsets from the kernel's BTF, and
the uid filter's map."""

from __future__ import annotations

from typing import Dict, Tuple

from ..bpf import btf, system
from .keyfilter import KeyFilter

MAX_FILTER_UIDS = 1024

# struct task_struct members the program reads, from the kernel's BTF.
TASK_MEMBERS = (
    ("TASK_PID", "pid"),
    ("TASK_TGID", "tgid"),
    ("TASK_REAL_PARENT", "real_parent"),
    ("TASK_START_TIME", "start_time"),
    ("TASK_EXIT_CODE", "exit_code"),
)
REQUIRED_TRACEPOINTS = (
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "sched:sched_process_fork",
    "syscalls:sys_enter_execve",
    "syscalls:sys_exit_execve",
    "syscalls:sys_enter_openat",
    "syscalls:sys_exit_openat",
    "signal:signal_generate",
)


def tracepoint(name: str) -> bool:
    """Whether ``category:event`` exists in this kernel."""
    category, event = name.split(":", 1)
    return system.tracepoint_exists(category, event)


def task_offsets() -> Tuple[Dict[str, int], str]:
    """The task_struct offsets as -D values, or ({}, why not)."""
    try:
        found = btf.members(tuple(("task_struct", member) for _, member in TASK_MEMBERS))
    except btf.BtfError as e:
        return {}, f"needs the kernel's BTF for task_struct offsets ({e})"
    out = {}
    for define, member in TASK_MEMBERS:
        got = found[("task_struct", member)]
        if got is None:
            return {}, f"the kernel's task_struct has no {member} member"
        out[define] = got[0]
    return out, ""


class UidFilter(KeyFilter):
    """User ids of the acting process (the maps uid_mode and filter_uids)."""

    what = "uid"
    low, high = 0, 2**32 - 2
    limit = MAX_FILTER_UIDS

    @property
    def uids(self) -> Tuple[int, ...]:
        return self.keys
