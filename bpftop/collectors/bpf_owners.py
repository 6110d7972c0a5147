"""Who holds each BPF program, and what some of them are attached to, from
/proc: a process holding a program fd or a link fd shows ``prog_id:`` in
that fd's fdinfo; a perf event fd running a program (how BCC attaches
tracepoints and kprobes) is asked with BPF_TASK_FD_QUERY, which also names
the tracepoint or function (what ``bpftool perf`` shows).

Only fds whose link says ``anon_inode:bpf-prog``, ``anon_inode:bpf_link``
or ``anon_inode:[perf_event]`` are opened, so a scan is one readlink per fd
and a small read per BPF fd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from .. import procfs
from ..bpf import attachinfo, objinfo
from ..model.bpf import Owner

_PROG = "anon_inode:bpf-prog"
_LINK = "anon_inode:bpf_link"
_PERF = "anon_inode:[perf_event]"
_STATS = "anon_inode:bpf-stats"


@dataclass
class Holders:
    owners: Dict[int, List[Owner]] = field(default_factory=dict)  # prog id -> owners
    attach: Dict[int, Set[str]] = field(default_factory=dict)  # prog id -> attach points
    # Processes holding a BPF_ENABLE_STATS fd: statistics are on while they
    # do (the sysctl does not show it).
    stats_holders: List[Owner] = field(default_factory=list)
    # prog id -> bpffs paths that keep it loaded (the program, or a link to it,
    # pinned): a hold with no process behind it.
    pinned: Dict[int, List[str]] = field(default_factory=dict)

    def drop_exited(self) -> None:
        """Forget holders whose process is gone (a pid reused meanwhile is
        caught by the next full scan)."""
        gone = {o.pid for owners in self.owners.values() for o in owners} | {o.pid for o in self.stats_holders}
        gone = set(procfs.exited(gone))
        if not gone:
            return
        for prog_id, owners in self.owners.items():
            self.owners[prog_id] = [o for o in owners if o.pid not in gone]
        self.stats_holders = [o for o in self.stats_holders if o.pid not in gone]

    def add_owner(self, prog_id: int, owner: Owner) -> None:
        found = self.owners.setdefault(prog_id, [])
        if all(o.pid != owner.pid for o in found):
            found.append(owner)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return ""


def _prog_id(pid: int, fd: str) -> int:
    """The program an fd holds; 0 for none, and for another BPF tab's brief
    look at it (objinfo marks those fds O_NONBLOCK)."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:") and int(line.split()[1], 8) & os.O_NONBLOCK:
                    return 0
                if line.startswith("prog_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _fds(pid: int) -> List[Tuple[str, str]]:
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    out = []
    for name in names:
        try:
            target = os.readlink(f"{base}/{name}")
        except OSError:
            continue
        if target in (_PROG, _LINK, _PERF, _STATS):
            out.append((name, target))
    return out


def scan(pids: Tuple[int, ...] = ()) -> Holders:
    """Every process's BPF holds (only those of ``pids`` when given)."""
    holders = Holders(pinned={} if pids else pinned())
    candidates = pids or tuple(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in candidates:
        fds = _fds(pid)
        if not fds:
            continue
        comm = _comm(pid)
        for fd, target in fds:
            if target == _STATS:
                holders.stats_holders.append(Owner(pid, comm, "fdinfo"))
                continue
            if target in (_PERF, _LINK):
                # A perf event or a (raw tracepoint) link: the kernel names its hook.
                found = attachinfo.task_fd_query(pid, int(fd))
                if found is not None and found.prog_id:
                    point = f"{found.kind} {found.name}" if found.name else found.kind
                    holders.attach.setdefault(found.prog_id, set()).add(point)
                    if target == _PERF:
                        holders.add_owner(found.prog_id, Owner(pid, comm, "perf_event fd"))
                if target == _PERF:
                    continue
            prog_id = _prog_id(pid, fd)
            if prog_id:
                holders.add_owner(prog_id, Owner(pid, comm, "fdinfo"))
    return holders


# A bpffs with more files than this is looked at only this far.
MAX_PINNED = 10000


def bpffs_mounts(mounts: str = "/proc/self/mounts") -> List[str]:
    out = []
    try:
        with open(mounts) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "bpf":
                    # /proc/mounts writes a space in a path as \040.
                    out.append(fields[1].encode().decode("unicode_escape"))
    except OSError:
        pass
    return out


def pinned(roots: Optional[List[str]] = None) -> Dict[int, List[str]]:
    """Programs kept loaded by a pinned path: prog id -> paths, for programs
    pinned themselves and for pinned links."""
    found: Dict[int, List[str]] = {}
    seen = 0
    for root in bpffs_mounts() if roots is None else roots:
        for top, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                seen += 1
                if seen > MAX_PINNED:
                    return found
                path = os.path.join(top, name)
                fd = objinfo.obj_get(path)
                if fd is None:
                    continue
                try:
                    prog = objinfo.fdinfo_fields(f"/proc/self/fdinfo/{fd}").get("prog_id", "")
                finally:
                    os.close(fd)
                if prog.isdigit() and int(prog):
                    found.setdefault(int(prog), []).append(path)
    return found
