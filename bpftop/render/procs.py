"""The Processes tab as tables (screen and text) and as JSON."""

from __future__ import annotations

import shlex
import time
from typing import Any, Dict, List, Optional, Tuple

from ..jsonout import iso_time
from ..model.procs import (
    ExecEvent,
    ExitEvent,
    OpenEvent,
    ProcsSnapshot,
    SignalEvent,
    errno_name,
    signal_name,
)
from ..tables import Column, Table, filter_text, header_line, render_table

HELP = """\
Processes started and ended, files opened and signals sent, from the
sched, syscalls and signal tracepoints (execsnoop, exitsnoop, opensnoop and
killsnoop at once). The process table counts per process since the counts
started (bpftop start or the last filter change): EXECS, EXITS (its main
thread ended), FORKS (new processes, not threads), OPENS and FAILED (open/openat/openat2 that
returned an error), SIG OUT (signals generated in its context, SIGCHLD to
its parent on exit included) and SIG IN; NEW is this interval's activity.
Short-lived: processes that exited this interval having lived less than
one interval (top and ps never see them). argv keeps the first 8
arguments of 63 bytes each ("..." marks a cut). Event logs keep the latest
500 of each kind; lost events (the buffer was full) are counted in the
summary. pid and uid filters run in the kernel; comm~, path~, err (err!=0:
failed opens only; err=ENOENT) and sig (sig=SIGUSR1) filter the tables.
"""

TEXT_EVENTS = 20  # latest events of each kind in the plain-text output


def fmt_clock(v: Any) -> str:
    if v is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(v)) + f".{int(v * 1000) % 1000:03d}"


def fmt_ms(v: Any) -> str:
    return "-" if v is None else f"{v * 1e3:.1f}"


def fmt_text(v: Any) -> str:
    return "-" if v is None or v == "" else str(v)


def argv_text(argv: Tuple[str, ...], cut: Tuple[int, ...] = (), more: bool = False) -> str:
    """argv as a shell would quote it (spaces stay visible), cut arguments
    and missing ones marked with "..."; the table cell escapes controls."""
    words = [shlex.quote(a) + ("..." if i in cut else "") for i, a in enumerate(argv)]
    if more:
        words.append("...")
    return " ".join(words)


def exit_text(e: ExitEvent) -> str:
    return f"killed {signal_name(e.signal)}" if e.signal else f"exit {e.code}"


def flags_text(flags: int) -> str:
    """O_ flags as opensnoop shows the interesting ones."""
    acc = {0: "RDONLY", 1: "WRONLY", 2: "RDWR"}.get(flags & 3, "ACC?")
    names = [acc]
    for bit, name in ((0o100, "CREAT"), (0o1000, "TRUNC"), (0o2000, "APPEND"), (0o200000, "DIRECTORY"),
                      (0o2000000, "CLOEXEC"), (0o200, "EXCL")):
        if flags & bit:
            names.append(name)
    return "|".join(names)


PROC_COLUMNS = (
    Column("pid", "PID", width=7),
    Column("ppid", "PPID", width=7),
    Column("uid", "UID", width=5),
    Column("comm", "COMM", numeric=False, fmt=str, width=15),
    Column("new", "NEW", width=5),
    Column("execs", "EXECS", width=5),
    Column("exits", "EXITS", width=5),
    Column("forks", "FORKS", width=5),
    Column("opens", "OPENS", width=6),
    Column("open_fails", "FAILED", width=6),
    Column("sig_sent", "SIG OUT", width=7),
    Column("sig_recv", "SIG IN", width=6),
)


def processes_table(snap: ProcsSnapshot) -> Table:
    return Table(
        name="procs-processes",
        title="Processes",
        columns=PROC_COLUMNS,
        rows=tuple(
            (p.pid, p.ppid or None, p.uid, p.comm, p.new, p.execs, p.exits, p.forks, p.opens, p.open_fails,
             p.sig_sent, p.sig_recv)
            for p in snap.processes
        ),
        empty="no process activity yet" + _filtered(snap),
        sort_column=4,
    )


def short_lived_table(events: Tuple[ExitEvent, ...]) -> Table:
    return Table(
        name="procs-short",
        title="Short-lived",
        columns=(
            Column("pid", "PID", width=7),
            Column("ppid", "PPID", width=7),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            Column("lifetime", "LIVED ms", fmt=fmt_ms, width=8),
            Column("exit", "EXIT", numeric=False, fmt=str, width=8),
            Column("argv", "ARGS", numeric=False, fmt=fmt_text, width=20),
            # The row key: a pid can come back within one interval.
            Column("seq", "#", width=5),
        ),
        rows=tuple((e.pid, e.ppid or None, e.comm, e.lifetime_s, exit_text(e), argv_text(e.argv), e.seq)
                   for e in events),
        empty="no short-lived process this interval",
        key_column=6,
        sort_column=3,
    )


def execs_table(events: Tuple[ExecEvent, ...]) -> Table:
    return Table(
        name="procs-execs",
        title="Execs",
        columns=(
            Column("seq", "#", width=5),
            Column("time", "TIME", numeric=False, fmt=fmt_clock, width=12),
            Column("pid", "PID", width=7),
            Column("ppid", "PPID", width=7),
            Column("uid", "UID", width=5),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            Column("path", "FILE", numeric=False, fmt=str, width=16),
            Column("argv", "ARGS", numeric=False, fmt=fmt_text, width=20),
        ),
        rows=tuple(
            (e.seq, e.time, e.pid, e.ppid or None, e.uid, e.comm, e.filename + ("..." if e.filename_cut else ""),
             argv_text(e.argv, e.argv_cut, e.argv_more))
            for e in events
        ),
        empty="no exec yet",
        sort_column=0,
    )


def opens_table(events: Tuple[OpenEvent, ...]) -> Table:
    return Table(
        name="procs-opens",
        title="Opens",
        columns=(
            Column("seq", "#", width=5),
            Column("time", "TIME", numeric=False, fmt=fmt_clock, width=12),
            Column("pid", "PID", width=7),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            # The errno is a name: err=ENOENT, err!=0 (every failure).
            Column("err", "ERR", numeric=False, fmt=str, width=6),
            Column("fd", "FD", width=4),
            Column("flags", "FLAGS", numeric=False, fmt=str, width=10),
            Column("path", "PATH", numeric=False, fmt=str, width=20),
        ),
        rows=tuple(
            (e.seq, e.time, e.pid, e.comm, errno_name(e.errno) or "0", e.fd if e.fd >= 0 else None,
             flags_text(e.flags), e.path + ("..." if e.path_cut else ""))
            for e in events
        ),
        empty="no open yet",
        sort_column=0,
    )


def signals_table(events: Tuple[SignalEvent, ...]) -> Table:
    return Table(
        name="procs-signals",
        title="Signals",
        columns=(
            Column("seq", "#", width=5),
            Column("time", "TIME", numeric=False, fmt=fmt_clock, width=12),
            Column("pid", "PID", width=7),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            Column("sig", "SIGNAL", numeric=False, fmt=str, width=8),
            Column("target", "TARGET", width=7),
            Column("result", "RESULT", numeric=False, fmt=str, width=10),
        ),
        rows=tuple((e.seq, e.time, e.pid, e.comm, signal_name(e.sig), e.target, e.result) for e in events),
        empty="no signal yet",
        sort_column=0,
    )


def _filtered(snap: ProcsSnapshot) -> str:
    return " (filtered)" if filters(snap) else ""


def filters(snap: ProcsSnapshot) -> str:
    parts = [filter_text(snap.pid_filter, snap.pid_exclude)]
    op = "!=" if snap.uid_exclude else "="
    parts += [f"uid{op}{u}" for u in snap.uid_filter]
    return " ".join(p for p in parts if p)


def lost_text(snap: ProcsSnapshot) -> str:
    total = snap.lost_total
    if not total:
        return "lost 0"
    kinds = ", ".join(f"{n} {kind}" for kind, n in snap.lost if n)
    return f"lost {total} ({kinds})" + (f" (+{snap.lost_new})" if snap.lost_new else "")


def summary(snap: ProcsSnapshot) -> str:
    parts = [
        f"{snap.n_execs} execs",
        f"{snap.n_exits} exits",
        f"{snap.n_forks} forks",
        f"{snap.n_opens} opens ({snap.n_open_fails} failed)",
        f"{snap.n_signals} signals",
        f"{len(snap.short_lived)} short-lived",
        lost_text(snap),
    ]
    return "  ".join(parts)


def since_line(snap: ProcsSnapshot) -> str:
    return f"counting since {time.strftime('%H:%M:%S', time.localtime(snap.since))} via {snap.buffer}"


def _section(title: str, table: Table, kept: int) -> List[str]:
    shown = len(table.rows)
    return [f"{title} (newest first, {shown} of {kept} kept)"] + render_table(table)


def to_text(snap: ProcsSnapshot, limit: Optional[int] = None, events: int = TEXT_EVENTS) -> str:
    procs = processes_table(snap)
    lines = [
        header_line("procs", snap.interval_s, snap.taken_at, snap.hook, filters(snap)),
        summary(snap),
        since_line(snap),
        "",
    ]
    lines += render_table(procs.sorted_by(procs.sort_column), limit)
    lines.append("")
    lines.append(f"Short-lived (exited this interval, lived under {snap.interval_s:.2f}s): {len(snap.short_lived)}")
    lines += render_table(short_lived_table(snap.short_lived), limit)
    lines.append("")
    lines += _section("Latest execs", execs_table(snap.execs[:events]), len(snap.execs))
    lines.append("")
    lines += _section("Latest opens", opens_table(snap.opens[:events]), len(snap.opens))
    lines.append("")
    lines += _section("Latest signals", signals_table(snap.signals[:events]), len(snap.signals))
    return "\n".join(lines) + "\n"


def _s(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 6)


def exit_dict(e: ExitEvent) -> Dict[str, Any]:
    return {
        "time": iso_time(e.time), "pid": e.pid, "ppid": e.ppid, "uid": e.uid, "comm": e.comm,
        "code": e.code, "signal": e.signal, "lifetime_s": _s(e.lifetime_s), "argv": list(e.argv),
    }


def to_dict(snap: ProcsSnapshot) -> Dict[str, Any]:
    return {
        "tab": "procs",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "since": iso_time(snap.since),
        "hook": snap.hook,
        "buffer": snap.buffer,
        "pid_filter": {"pids": list(snap.pid_filter), "exclude": snap.pid_exclude},
        "uid_filter": {"uids": list(snap.uid_filter), "exclude": snap.uid_exclude},
        "execs": snap.n_execs,
        "exits": snap.n_exits,
        "forks": snap.n_forks,
        "opens": snap.n_opens,
        "open_fails": snap.n_open_fails,
        "signals": snap.n_signals,
        "lost": dict(snap.lost, interval=snap.lost_new),
        "rows": [
            {
                "pid": p.pid, "ppid": p.ppid, "uid": p.uid, "comm": p.comm, "execs": p.execs, "exits": p.exits,
                "forks": p.forks, "opens": p.opens, "open_fails": p.open_fails, "sig_sent": p.sig_sent,
                "sig_recv": p.sig_recv, "new": p.new, "exited": p.exited,
            }
            for p in snap.processes
        ],
        "short_lived": [exit_dict(e) for e in snap.short_lived],
        "exec_events": [
            {
                "time": iso_time(e.time), "pid": e.pid, "ppid": e.ppid, "uid": e.uid, "comm": e.comm,
                "filename": e.filename, "argv": list(e.argv), "argv_cut": list(e.argv_cut),
                "argv_more": e.argv_more,
            }
            for e in snap.execs
        ],
        "exit_events": [exit_dict(e) for e in snap.exits],
        "open_events": [
            {
                "time": iso_time(e.time), "pid": e.pid, "tid": e.tid, "uid": e.uid, "comm": e.comm,
                "path": e.path, "flags": e.flags, "fd": e.fd, "errno": e.errno,
                "error": errno_name(e.errno) or None, "path_cut": e.path_cut,
            }
            for e in snap.opens
        ],
        "signal_events": [
            {
                "time": iso_time(e.time), "pid": e.pid, "comm": e.comm, "target": e.target, "sig": e.sig,
                "signal": signal_name(e.sig), "result": e.result,
            }
            for e in snap.signals
        ],
    }
