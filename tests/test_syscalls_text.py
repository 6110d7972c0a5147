"""Plain-text and JSON rendering of the syscalls tab."""

import json

from bpftop.model import ProcessRow, SyscallRow, SyscallsSnapshot
from bpftop.render import syscalls as render


def snap(**kw):
    base = dict(
        interval_s=2.0,
        taken_at=0.0,
        rows=(SyscallRow("read", 0, 10, 1, 20_000, 10), SyscallRow("openat", 257, 30, 0, None, 0)),
        processes=(ProcessRow(1, "init", 4), ProcessRow(99, "nginx", 36)),
        latency=True,
        pid_filter=(99,),
        hook="raw tracepoints",
    )
    base.update(kw)
    return SyscallsSnapshot(**base)


def test_text_has_header_tables_and_is_sorted_like_the_screen():
    text = render.to_text(snap())
    lines = text.splitlines()
    assert lines[0].startswith("bpftop syscalls") and "filter: pid=99" in lines[0] and "hook: raw tracepoints" in lines[0]
    assert lines[1].startswith("40 calls (20/s)  1 errors")
    body = text[text.index("SYSCALL"):]
    assert body.index("openat") < body.index("read")  # by count
    assert body.index("nginx") < body.index("init")
    read = next(ln for ln in lines if ln.startswith("read"))
    assert read.split() == ["read", "10", "5.0", "1", "10.0", "0.020", "2.00"]
    assert "\x1b" not in text


def test_sort_keeps_missing_values_last_and_reverses():
    calls, _ = render.tables(snap())
    by_avg = calls.sorted_by(6)
    assert [r[0] for r in by_avg.rows] == ["read", "openat"]
    assert [r[0] for r in calls.sorted_by(6, reverse=True).rows] == ["read", "openat"]
    assert [r[0] for r in calls.sorted_by(0).rows] == ["openat", "read"]
    assert [r[0] for r in calls.sorted_by(0, reverse=True).rows] == ["read", "openat"]


def test_empty_snapshot_says_so():
    text = render.to_text(snap(rows=(), processes=()))
    assert "(no syscalls in this interval for the filtered processes)" in text
    assert "(no processes in this interval)" in text


def test_limit_says_how_many_more():
    rows = tuple(SyscallRow(f"s{i}", i, 100 - i, 0, None) for i in range(8))
    text = render.to_text(snap(rows=rows), limit=5)
    assert "... 3 more" in text


def test_json_fields_of_the_contract():
    d = render.to_dict(snap())
    json.dumps(d)
    assert d["tab"] == "syscalls" and d["interval_s"] == 2.0
    assert d["rows"][0] == {"syscall": "read", "nr": 0, "count": 10, "errors": 1, "total_ns": 20000, "avg_ns": 2000.0}
    assert d["rows"][1]["avg_ns"] is None
    assert {"pid": 99, "comm": "nginx", "count": 36} in d["processes"]
    assert d["pid_filter"] == {"pids": [99], "exclude": False}
