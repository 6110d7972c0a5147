"""Snapshots as the JSON objects of the interface contract (DESIGN.md)."""

from __future__ import annotations

import datetime
from typing import Any, Dict

from .model import SyscallsSnapshot


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="milliseconds")


def syscalls_dict(snap: SyscallsSnapshot) -> Dict[str, Any]:
    return {
        "tab": "syscalls",
        "interval_s": round(snap.interval_s, 6),
        "time": _iso(snap.taken_at),
        "hook": snap.hook,
        "latency": snap.latency,
        "pid_filter": {"pids": list(snap.pid_filter), "exclude": snap.pid_exclude},
        "rows": [
            {
                "syscall": r.syscall,
                "nr": r.nr,
                "count": r.count,
                "errors": r.errors,
                "total_ns": r.total_ns,
                "avg_ns": None if r.avg_ns is None else round(r.avg_ns, 1),
            }
            for r in snap.rows
        ],
        "processes": [{"pid": p.pid, "comm": p.comm, "count": p.count} for p in snap.processes],
        "untracked_calls": snap.untracked_calls,
    }
