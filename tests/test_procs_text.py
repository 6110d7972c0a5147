"""The Processes tab's event decoder, count table and renderers, fed
synthetic kernel events (no BPF, no root)."""

import json

from bpftop.collectors import procs_events as pe
from bpftop.filters import parse
from bpftop.model.procs import ProcsSnapshot, signal_number
from bpftop.render import procs as render
from bpftop.tabs import TABS

ESC_ARG = "\x1b[2J"


def raw(kind, pid=100, tid=None, ppid=1, uid=0, ret=0, flags=0, target=0, comm=b"sh", path=b"",
        argv=(), trunc=0, ts=2_000_000_000, start=0):
    head = pe.HEADER.pack(ts, start, kind, pid, tid or pid, ppid, uid, ret, flags, target, len(argv), trunc, comm)
    body = path.ljust(pe.PATH_LEN, b"\0")
    if kind != pe.EV_EXEC:
        return head + body
    args = b"".join(a.encode()[: pe.ARG_LEN - 1].ljust(pe.ARG_LEN, b"\0") for a in argv)
    return head + body + args.ljust(pe.MAX_ARGS * pe.ARG_LEN, b"\0")


def feed_scenario(log):
    log.feed(raw(pe.EV_EXEC, pid=200, ppid=100, comm=b"true", path=b"/bin/true",
                 argv=("true", "two words", "ünï ✓", ESC_ARG, "x" * 70), trunc=1 << 4))
    log.feed(raw(pe.EV_OPEN, pid=200, comm=b"true", path=b"/etc/ld.so.cache", ret=3, flags=0o2000000))
    log.feed(raw(pe.EV_OPEN, pid=200, comm=b"true", path=b"/nope", ret=-2))
    log.feed(raw(pe.EV_SIGNAL, pid=100, target=200, flags=15, ret=0))
    log.feed(raw(pe.EV_EXIT, pid=200, ppid=100, comm=b"true", ret=0x0300, ts=2_005_000_000, start=2_000_000_000))
    log.feed(raw(pe.EV_EXIT, pid=300, ppid=100, comm=b"sleep", ret=9, ts=9_000_000_000, start=1_000_000_000))


def snapshot(log, table_rows=(), interval=2.0, **kw):
    t = log.take()
    base = dict(
        interval_s=interval, taken_at=0.0, hook="sched/syscalls/signal tracepoints, ring buffer", since=t.since,
        processes=tuple(table_rows), short_lived=pe.short_lived(t.exited_now, interval), execs=t.execs,
        exits=t.exits, opens=t.opens, signals=t.signals,
    )
    base.update(kw)
    return ProcsSnapshot(**base)


def test_events_decode_with_argv_exit_codes_and_lifetimes():
    log = pe.EventLog()
    feed_scenario(log)
    snap = snapshot(log)
    (ex,) = snap.execs
    assert (ex.pid, ex.ppid, ex.comm, ex.filename) == (200, 100, "true", "/bin/true")
    assert ex.argv == ("true", "two words", "ünï ✓", ESC_ARG, "x" * 63) and ex.argv_cut == (4,)
    assert [(o.path, o.fd, o.errno) for o in snap.opens] == [("/nope", -1, 2), ("/etc/ld.so.cache", 3, 0)]
    (sig,) = snap.signals
    assert (sig.pid, sig.target, sig.sig, sig.result) == (100, 200, 15, "delivered")
    exits = {e.pid: e for e in snap.exits}
    assert (exits[200].code, exits[200].signal, exits[200].lifetime_s) == (3, 0, 0.005)
    assert exits[200].argv == ex.argv  # joined from its exec
    assert (exits[300].code, exits[300].signal, exits[300].lifetime_s) == (0, 9, 8.0)
    # Lived under the 2 s interval: only the first.
    assert [e.pid for e in snap.short_lived] == [200]
    assert log.take().exited_now == ()  # an exit counts in one interval only


def test_each_open_and_signal_is_decoded_once_across_takes(monkeypatch):
    """An idle machine's log fills slowly: a take decodes only what came
    since the last one, and shows the same events as before, newest first,
    bounded to the log's size."""
    log = pe.EventLog(max_events=3)
    decoded = []
    for name in ("_open", "_signal"):
        real = getattr(log, name)
        monkeypatch.setattr(log, name, lambda seq, data, real=real: decoded.append(seq) or real(seq, data))
    for i in range(2):
        log.feed(raw(pe.EV_OPEN, path=f"/f{i}".encode(), ret=3))
    log.feed(raw(pe.EV_SIGNAL, pid=100, target=200, flags=15))
    first = log.take()
    assert [o.path for o in first.opens] == ["/f1", "/f0"] and len(first.signals) == 1
    assert sorted(decoded) == [1, 2, 3]
    decoded.clear()
    assert log.take() == first and decoded == []
    for i in range(2, 4):
        log.feed(raw(pe.EV_OPEN, path=f"/f{i}".encode(), ret=3))
    third = log.take()
    assert [o.path for o in third.opens] == ["/f3", "/f2", "/f1"] and third.opens[2] is first.opens[0]
    assert decoded == [5, 4]


def test_count_table_deltas_and_freeing_exited_entries():
    table = pe.CountTable()
    table.reset([(100, 1, 0, "sh", (0, 0, 1, 5, 1, 0, 0))])
    rows, gone = table.update([(100, 1, 0, "sh", (0, 0, 3, 9, 2, 1, 0)),
                               (200, 100, 0, "true", (1, 1, 0, 4, 0, 1, 0))], {})
    by = {r.pid: r for r in rows}
    assert (by[100].forks, by[100].opens, by[100].open_fails, by[100].sig_sent, by[100].new) == (2, 4, 1, 1, 8)
    assert (by[200].execs, by[200].exits, by[200].exited) == (1, 1, True)
    assert gone == [] and table.interval == [1, 1, 2, 8, 1, 2, 0]
    # One read after its exit the entry is freed; its row shows once more.
    rows, gone = table.update([(100, 1, 0, "sh", (0, 0, 3, 9, 2, 1, 0)),
                               (200, 100, 0, "true", (1, 1, 0, 4, 0, 1, 1))], {})
    assert gone == [200] and {r.pid: r.sig_recv for r in rows}[200] == 1
    rows, gone = table.update([(100, 1, 0, "sh", (0, 0, 3, 9, 2, 1, 0))], {})
    assert [r.pid for r in rows] == [100] and table.interval == [0] * 7
    # A process idle since the counts started has no row.
    table.reset([(100, 1, 0, "sh", (0, 0, 3, 9, 2, 1, 0))])
    assert table.update([(100, 1, 0, "sh", (0, 0, 3, 9, 2, 1, 0))], {})[0] == ()


def test_entries_of_processes_that_ended_unseen_are_freed():
    table = pe.CountTable()
    table.reset([])
    entry = (700, 1, 0, "x", (0, 0, 0, 3, 0, 0, 0))
    assert table.update([entry], {})[1] == []
    assert table.update([entry], {}, gone={700})[1] == []  # one read to show it
    assert table.update([entry], {}, gone={700})[1] == [700]


def test_descendants_follow_the_parent_chain():
    log = pe.EventLog()
    feed_scenario(log)
    snap = snapshot(log)
    rows = pe.CountTable()
    got, _ = rows.update([(100, 1, 0, "sh", (0, 0, 2, 0, 0, 1, 0)), (300, 100, 0, "sleep", (0, 1, 0, 0, 0, 0, 0)),
                          (400, 300, 0, "x", (0, 0, 0, 1, 0, 0, 0)), (500, 1, 0, "y", (0, 0, 0, 1, 0, 0, 0))], {})
    assert pe.descendants(got, 100, [(e.pid, e.ppid) for e in snap.execs]) == (100, 200, 300, 400)


def test_text_escapes_argv_comm_and_paths():
    log = pe.EventLog()
    log.feed(raw(pe.EV_EXEC, pid=7, comm=b"\x1b]0;x\x07", path=b"/tmp/\x1b[31mred", argv=("a", ESC_ARG)))
    log.feed(raw(pe.EV_OPEN, pid=7, comm=b"\x1b]0;x\x07", path=b"/tmp/\x1b[2J\n", ret=-13))
    log.feed(raw(pe.EV_EXIT, pid=7, comm=b"\x1b]0;x\x07", ts=2_001_000_000, start=2_000_000_000))
    snap = snapshot(log)
    text = TABS["procs"].to_text(snap)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in render.to_text(snap) and "\\x1b]0;x\\x07" in text and "\\n" in text
    assert "EACCES" in text
    data = json.loads(json.dumps(TABS["procs"].to_dict(snap)))
    assert data["exec_events"][0]["argv"] == ["a", ESC_ARG]
    assert data["open_events"][0]["path"] == "/tmp/\x1b[2J\n" and data["open_events"][0]["errno"] == 13


def test_json_contract():
    log = pe.EventLog()
    feed_scenario(log)
    table = pe.CountTable()
    rows, _ = table.update([(100, 1, 0, "sh", (0, 0, 1, 2, 1, 1, 0))], {})
    data = TABS["procs"].to_dict(snapshot(log, rows, lost=(("exec", 0), ("open", 3)), n_opens=2))
    assert data["tab"] == "procs" and data["interval_s"] == 2.0
    assert data["rows"][0] == {"pid": 100, "ppid": 1, "uid": 0, "comm": "sh", "execs": 0, "exits": 0, "forks": 1,
                               "opens": 2, "open_fails": 1, "sig_sent": 1, "sig_recv": 0, "new": 5, "exited": False}
    ex = data["exec_events"][0]
    assert {"pid", "ppid", "comm", "argv"} <= set(ex) and isinstance(ex["argv"], list) and ex["argv_cut"] == [4]
    assert [(o["pid"], o["path"], o["errno"]) for o in data["open_events"]] == [
        (200, "/nope", 2), (200, "/etc/ld.so.cache", 0)]
    assert data["signal_events"][0]["signal"] == "SIGTERM"
    assert [e["pid"] for e in data["short_lived"]] == [200]
    assert data["lost"] == {"exec": 0, "open": 3, "interval": 0}


def test_text_shows_losses_and_filters():
    log = pe.EventLog()
    snap = snapshot(log, lost=(("exec", 2), ("open", 5)), lost_new=5, pid_filter=(42,), uid_filter=(1000,),
                    uid_exclude=True)
    text = render.to_text(snap)
    assert "lost 7 (2 exec, 5 open) (+5)" in text
    assert "filter: pid=42 uid!=1000" in text


def test_row_filters_on_event_tables():
    log = pe.EventLog()
    feed_scenario(log)
    snap = snapshot(log)
    opens = render.opens_table(snap.opens)
    assert [r[-1] for r in parse("err!=0").apply(opens).rows] == ["/nope"]
    assert [r[-1] for r in parse("err=ENOENT").apply(opens).rows] == ["/nope"]
    assert [r[-1] for r in parse("path~^/etc").apply(opens).rows] == ["/etc/ld.so.cache"]
    signals = render.signals_table(snap.signals)
    assert len(parse("sig=SIGTERM").apply(signals).rows) == 1 and not parse("sig=SIGKILL").apply(signals).rows
    assert signal_number("kill") == 9 and signal_number("SIGUSR1") == 10 and signal_number("15") == 15
    assert signal_number("NOPE") is None


def test_argv_text_marks_cuts_and_quotes_spaces():
    assert render.argv_text(("ls", "two words", "x"), cut=(2,), more=True) == "ls 'two words' x... ..."


def test_metrics_add_each_interval_and_count_losses():
    m = TABS["procs"].metrics()
    table = pe.CountTable()
    rows, _ = table.update([(100, 1, 0, "sh", (1, 0, 2, 3, 1, 0, 0))], {})
    log = pe.EventLog()
    procs = m.fold(snapshot(log, rows, n_execs=1, n_forks=2, n_opens=3, n_open_fails=1, lost_new=4))
    m.fold(snapshot(log, (), n_execs=2, lost_new=-1))  # a restart never makes a counter go down
    assert procs == [("procs_events", 100, "sh", 7)]
    fams = {f.name: f.samples[0].value for f in m.families(top_n=10)}
    assert fams["bpftop_procs_execs"] == 3 and fams["bpftop_procs_forks"] == 2
    assert fams["bpftop_procs_open_failures"] == 1 and fams["bpftop_procs_lost_events"] == 4
