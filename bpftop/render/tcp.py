"""The TCP tab as tables (screen and text) and as JSON."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

from ..jsonout import iso_time
from ..model.tcp import FAILURES, ConnectEvent, TcpSnapshot, endpoint
from ..tables import Column, Table, filter_text, fmt_rate, header_line, render_table

# How to read the tab's numbers: the help screen shows it under the tab's keys.
HELP = """\
Every outgoing TCP connect: the attempt (CLOSE to SYN_SENT on the
sock:inet_sock_set_state tracepoint) and its outcome: established (LAT is
SYN_SENT to ESTABLISHED, like tcpconnlat), refused (a reset arrived) or
failed (closed before established: timeout, unreachable, given up).
CONNECTS and FAILED count since the counts started (bpftop start or the last
filter change); NEW is this interval. AVG ms: attempt to outcome, over every connect whose outcome has a time
(established, refused or timed out).
Every count comes from the kernel's own tables, exact however fast the
connects come. The event log is a sample: the kernel sends a few hundred
attempts a second (and their outcomes) and counts the rest as "not
streamed"; the log keeps the latest 500. Lost events (the buffer was full)
are counted in the summary apart from them. pid and port filters run in the kernel;
comm and address filters in Python. Addresses are not resolved (no DNS).
"""

TEXT_EVENTS = 20  # latest events in the plain-text output


def fmt_us_as_ms(v: Any) -> str:
    return "-" if v is None else f"{v / 1e3:.3f}"


def fmt_clock(v: Any) -> str:
    if v is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(v)) + f".{int(v * 1000) % 1000:03d}"


def fmt_port(v: Any) -> str:
    return "-" if not v else str(v)


def _procs_text(comms: Tuple[str, ...], pids: Tuple[int, ...], dropped: int = 0) -> str:
    names = ",".join(comms[:3]) + (",..." if len(comms) > 3 else "")
    if dropped:
        return names + f" ({len(pids)} pids listed, +{dropped} connects from others)"
    return names + (f" ({len(pids)} pids)" if len(pids) > 1 else "")


def tables(snap: TcpSnapshot) -> Tuple[Table, Table]:
    outcome = snap.outcomes
    dests = Table(
        name="tcp-destinations",
        title="Destinations",
        columns=(
            Column("dest", "DESTINATION", numeric=False, fmt=str, width=22),
            Column("count", "CONNECTS", width=8),
            Column("new", "NEW", width=6),
            Column("failures", "FAILED", width=6),
            Column("avg", "AVG ms", fmt=fmt_us_as_ms, width=8),
            Column("processes", "PROCESSES", numeric=False, fmt=str, width=12),
        ),
        rows=tuple(
            (
                d.endpoint,
                d.count,
                d.new,
                d.failures if outcome else None,
                d.avg_latency_us,
                _procs_text(d.comms, d.pids, d.pids_dropped),
            )
            for d in snap.destinations
        ),
        empty="no connects yet" + _filtered(snap),
        sort_column=1,
    )
    procs = Table(
        name="tcp-processes",
        title="Processes",
        columns=(
            Column("pid", "PID", width=7),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            Column("uid", "UID", width=5),
            Column("count", "CONNECTS", width=8),
            Column("new", "NEW", width=6),
            Column("failures", "FAILED", width=6),
            Column("avg", "AVG ms", fmt=fmt_us_as_ms, width=8),
        ),
        rows=tuple(
            (p.pid, p.comm, p.uid, p.count, p.new, p.failures if outcome else None, p.avg_latency_us)
            for p in snap.processes
        ),
        empty="no connects yet" + _filtered(snap),
        sort_column=3,
    )
    return dests, procs


def events_table(events: Tuple[ConnectEvent, ...]) -> Table:
    """The event log, newest first (arrival order; never re-sorted)."""
    return Table(
        name="tcp-events",
        title="Connects",
        columns=(
            Column("seq", "#", width=5),
            Column("time", "TIME", numeric=False, fmt=fmt_clock, width=12),
            Column("pid", "PID", width=7),
            Column("comm", "COMM", numeric=False, fmt=str, width=15),
            # Where to and how it went before the source: at 80 columns
            # the source address is what runs past the edge.
            Column("dst", "DESTINATION", numeric=False, fmt=str, width=21),
            Column("result", "RESULT", numeric=False, fmt=str, width=11),
            Column("lat", "LAT ms", fmt=fmt_us_as_ms, width=8),
            Column("ip", "IP", width=2),
            Column("src", "SOURCE", numeric=False, fmt=str, width=21),
        ),
        rows=tuple(
            (
                e.seq,
                e.time,
                e.pid,
                e.comm,
                endpoint(e.daddr, e.dport, e.family),
                e.result,
                e.latency_us,
                e.family,
                endpoint(e.saddr, e.sport, e.family) if e.sport else e.saddr,
            )
            for e in events
        ),
        empty="no connects yet",
        sort_column=0,
    )


def _filtered(snap: TcpSnapshot) -> str:
    return " (filtered)" if filters(snap) else ""


def filters(snap: TcpSnapshot) -> str:
    parts = [filter_text(snap.pid_filter, snap.pid_exclude)]
    op = "!=" if snap.port_exclude else "="
    parts += [f"port{op}{p}" for p in snap.port_filter]
    parts.append(snap.match_filter)
    return " ".join(p for p in parts if p)


def summary(snap: TcpSnapshot) -> str:
    secs = snap.interval_s or 1.0
    parts = [f"{snap.connects} connects ({fmt_rate(snap.connects / secs)}/s)"]
    if snap.outcomes:
        parts.append(f"{snap.failures} failed")
    total = f"total {snap.total_connects}"
    if snap.outcomes:
        total += f" ({snap.total_failures} failed)"
    parts.append(total)
    for f in snap.families:
        parts.append(f"IPv{f.family} {f.count}" + (f"/{f.failures} failed" if snap.outcomes else ""))
    lost = snap.lost_total
    parts.append(f"lost {lost} events" + (f" (+{snap.lost_new})" if snap.lost_new else "") if lost else "lost 0")
    if snap.not_streamed:
        parts.append(f"log: {snap.not_streamed} attempts not streamed (rate limit)")
    if snap.orphan_results:
        parts.append(f"{snap.orphan_results} outcomes without their attempt")
    if snap.overflow_destinations:
        parts.append(f"{snap.overflow_destinations} connects past the destination table's limit")
    if not snap.outcomes:
        parts.append("(this hook sees attempts only: no outcome or latency)")
    return "  ".join(parts)


def sample_note(snap: TcpSnapshot) -> str:
    """What part of the attempts the event log's sample holds, when it is
    not all of them."""
    if not snap.not_streamed:
        return ""
    return f" (a sample: {snap.not_streamed} attempts not streamed)"


def since_line(snap: TcpSnapshot) -> str:
    return f"counting since {time.strftime('%H:%M:%S', time.localtime(snap.since))} via {snap.buffer}"


def to_text(snap: TcpSnapshot, limit: Optional[int] = None, events: int = TEXT_EVENTS) -> str:
    dests, procs = tables(snap)
    lines = [
        header_line("tcp", snap.interval_s, snap.taken_at, snap.hook, filters(snap)),
        summary(snap),
        since_line(snap),
        "",
    ]
    lines += render_table(dests.sorted_by(dests.sort_column), limit)
    lines.append("")
    lines += render_table(procs.sorted_by(procs.sort_column), limit)
    lines.append("")
    shown = snap.events[:events]
    lines.append(f"Latest connects (newest first, {len(shown)} of {len(snap.events)} kept){sample_note(snap)}")
    lines += render_table(events_table(shown))
    return "\n".join(lines) + "\n"


def _us(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(v, 1)


def to_dict(snap: TcpSnapshot) -> Dict[str, Any]:
    return {
        "tab": "tcp",
        "interval_s": round(snap.interval_s, 6),
        "time": iso_time(snap.taken_at),
        "since": iso_time(snap.since),
        "hook": snap.hook,
        "buffer": snap.buffer,
        "outcomes": snap.outcomes,
        "pid_filter": {"pids": list(snap.pid_filter), "exclude": snap.pid_exclude},
        "port_filter": {"ports": list(snap.port_filter), "exclude": snap.port_exclude},
        "match_filter": snap.match_filter,
        "connects": snap.connects,
        "failures": snap.failures,
        "total_connects": snap.total_connects,
        "total_failures": snap.total_failures,
        "families": [{"family": f.family, "count": f.count, "failures": f.failures} for f in snap.families],
        "lost": {"connects": snap.lost_connects, "results": snap.lost_results, "interval": snap.lost_new},
        "streamed": snap.streamed,
        "not_streamed": snap.not_streamed,
        "orphan_results": snap.orphan_results,
        "overflow_destinations": snap.overflow_destinations,
        "rows": [
            {
                "daddr": d.daddr,
                "dport": d.dport,
                "family": d.family,
                "count": d.count,
                "new": d.new,
                "failures": d.failures,
                "established": d.established,
                "avg_latency_us": _us(d.avg_latency_us),
                "timed": d.timed,
                "pids": list(d.pids),
                "comms": list(d.comms),
                "pids_dropped": d.pids_dropped,
            }
            for d in snap.destinations
        ],
        "processes": [
            {
                "pid": p.pid,
                "comm": p.comm,
                "uid": p.uid,
                "count": p.count,
                "new": p.new,
                "failures": p.failures,
                "established": p.established,
                "avg_latency_us": _us(p.avg_latency_us),
                "timed": p.timed,
            }
            for p in snap.processes
        ],
        "events": [
            {
                "time": iso_time(e.time),
                "pid": e.pid,
                "uid": e.uid,
                "comm": e.comm,
                "family": e.family,
                "saddr": e.saddr,
                "sport": e.sport,
                "daddr": e.daddr,
                "dport": e.dport,
                "result": e.result,
                "failed": e.result in FAILURES,
                "latency_us": _us(e.latency_us),
            }
            for e in snap.events
        ],
    }
