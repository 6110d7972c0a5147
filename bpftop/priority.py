"""The console's CPU priority, raised so that a machine whose CPUs are all
busy still answers the operator's keys (atop does the same, at -20).

Two settings decide how soon a runnable thread gets a CPU:
- its nice value, which the threads started afterwards inherit;
- where the kernel groups tasks by session (``sched_autogroup``, on in
  Debian's kernels), the session's group's nice. Nice values then only
  rank threads within their session: against a storm started from
  another shell, only the group's nice counts. In issue 16's storm the
  console's main thread waited up to 260 ms for a CPU at nice -10 and
  8 ms with its group at -10.

The console's own cost stays bounded (a few percent of a core in that
storm), so the raise cannot starve the work it watches. The group's
nice is put back when the console ends; it belongs to the session, which
outlives the console.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_NICE = -10
AUTOGROUP = "/proc/self/autogroup"
AUTOGROUP_ENABLED = "/proc/sys/kernel/sched_autogroup_enabled"


def read_group_nice(path: str = AUTOGROUP) -> Optional[int]:
    """The session group's nice (``/autogroup-25 nice 0``); None without one."""
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        return None
    if len(words) == 3 and words[1] == "nice":
        try:
            return int(words[2])
        except ValueError:
            return None
    return None


def groups_enabled(path: str = AUTOGROUP_ENABLED) -> bool:
    """Whether the kernel groups tasks by session for scheduling."""
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def write_group_nice(nice: int, path: str = AUTOGROUP) -> bool:
    """Set a session group's nice (``/proc/PID/autogroup``); False if refused."""
    try:
        with open(path, "w") as f:
            f.write(str(nice))
    except OSError:  # EPERM without CAP_SYS_NICE, or no such file
        return False
    return True


@dataclass
class Raised:
    """What ``raise_priority`` changed, to undo with ``restore``."""

    thread_nice: Optional[int] = None  # the nice set, if it was changed
    group_before: Optional[int] = None  # the group's nice before, if it was raised
    group_path: str = AUTOGROUP

    def restore(self) -> None:
        if self.group_before is not None:
            write_group_nice(self.group_before, self.group_path)
            self.group_before = None


def raise_priority(nice: int, group_path: str = AUTOGROUP, enabled_path: str = AUTOGROUP_ENABLED) -> Raised:
    """Set this thread's nice (and so that of every thread it starts) to
    ``nice``; when that raises the priority, raise its session group's to
    it too where the group's is lower. 0 changes nothing. A positive
    ``nice`` (a gentler console) leaves the group alone: it is the whole
    session's. Call it before any thread starts. Without the privilege,
    nothing changes and nothing is said: the console works as before."""
    raised = Raised(group_path=group_path)
    if nice == 0:
        return raised
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        # Never undoes what was chosen before: a console started at -15 stays there.
        if (nice < 0 and current > nice) or (nice > 0 and current < nice):
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # this thread: Linux nice is per thread
            raised.thread_nice = nice
    except OSError:
        pass
    if nice < 0 and groups_enabled(enabled_path):
        before = read_group_nice(group_path)
        if before is not None and before > nice and write_group_nice(nice, group_path):
            raised.group_before = before
    return raised
