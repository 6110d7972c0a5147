"""Recordings without root: exact round trips of every tab's snapshots, the
file's guarantees (new, no symlinks, crash-safe, versioned), the replay
timeline, and the replay console."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from bpf_tab_fakes import bpf_snapshot
from fakes import snapshot as syscalls_snapshot
from tcp_aggregator import Aggregator
from test_cache_ui import cache_snapshot
from test_disk_ui import disk_snapshot
from test_procs_text import feed_scenario
from test_procs_text import snapshot as procs_snapshot
from test_tcp_text import raw
from test_tcp_text import snapshot as tcp_snapshot

from bpftop.app import BpftopApp
from bpftop.collectors import procs_events as pe
from bpftop.collectors import tcp_events as te
from bpftop.filters import parse
from bpftop.recording.codec import CodecError, decode, encode
from bpftop.recording.file import Recorder, RecordingError, header, read
from bpftop.recording.replay import RecordedTab, Replay, ReplayError
from bpftop.tabs import TABS
from bpftop.widgets.top_table import TopTable


def tcp_snap(n):
    agg = Aggregator()
    for i in range(1, n + 1):
        agg.feed(raw(te.EV_CONNECT, i, sport=0))
        agg.feed(raw(te.EV_ESTABLISHED, i, sport=30000 + i, lat=100_000))
    agg.feed(raw(te.EV_CONNECT, 99, pid=200, comm=b"ssh", family=te.AF_INET6, saddr="::1", daddr="2001:db8::1", dport=22))
    agg.feed(raw(te.EV_REFUSED, 99, family=te.AF_INET6, saddr="::1", daddr="2001:db8::1", dport=22))
    return tcp_snapshot(agg, interval=1.0)


def procs_snap(n):
    log, table = pe.EventLog(), pe.CountTable()
    for _ in range(n):
        feed_scenario(log)
    rows, _ = table.update([(100, 1, 0, "sh", (0, 0, n, 2 * n, n, n, 0))], {})
    return procs_snapshot(log, rows, interval=1.0, lost=(("exec", 0), ("open", n)))


def samples():
    """Per tab, snapshots as the collectors make them (fakes for no root)."""
    return {
        "syscalls": [syscalls_snapshot(i) for i in range(3)],
        "disk": [disk_snapshot(i) for i in range(3)],
        "tcp": [tcp_snap(i + 1) for i in range(3)],
        "cache": [cache_snapshot(i) for i in range(3)],
        "procs": [procs_snap(i + 1) for i in range(3)],
        "bpf": [bpf_snapshot(i) for i in range(3)],
    }


def write_recording(path, snaps=None, close=True):
    snaps = snaps or samples()
    rec = Recorder(str(path), lambda: header(list(snaps), 1.0, dict.fromkeys(snaps, "fake"), {}))
    for i in range(3):
        rec.write_many([(tab, snaps[tab][i]) for tab in snaps])
    if close:
        rec.close()
    return snaps


def test_codec_round_trip_is_exact_for_every_tab():
    for tab, snaps in samples().items():
        for snap in snaps:
            back = decode(json.loads(json.dumps(encode(snap))))
            assert back == snap and type(back) is type(snap)
            assert TABS[tab].to_text(back) == TABS[tab].to_text(snap)
            assert TABS[tab].to_dict(back) == TABS[tab].to_dict(snap)


def test_codec_refuses_unknown_types():
    with pytest.raises(CodecError):
        decode({"@": "os.system", "x": 1})
    with pytest.raises(CodecError):
        encode(object())


def test_file_round_trip_and_header(tmp_path):
    path = tmp_path / "r.bpftop"
    snaps = write_recording(path)
    rec = read(str(path))
    assert rec.problem == ""
    head = rec.header
    assert head["format"] == "bpftop-recording" and head["version"] == 1
    assert {"host", "kernel", "bpftop", "interval", "tabs", "hooks", "filters", "started"} <= set(head)
    replay = Replay(rec)
    assert len(replay.ticks) == 3
    for i in range(3):
        got = replay.snapshots(i)
        for tab in snaps:
            assert TABS[tab].to_text(got[tab]) == TABS[tab].to_text(snaps[tab][i])
    with gzip.open(path, "rt") as f:  # plain gzip tools read it
        assert json.loads(f.readline())["format"] == "bpftop-recording"


def test_never_overwrites_never_through_a_symlink_append_on_request(tmp_path):
    path = tmp_path / "r.bpftop"
    write_recording(path)
    size = path.stat().st_size
    with pytest.raises(RecordingError, match="never overwrites"):
        Recorder(str(path), dict)
    assert path.stat().st_size == size
    link = tmp_path / "link.bpftop"
    link.symlink_to(tmp_path / "elsewhere.bpftop")
    with pytest.raises(RecordingError, match="symlink"):
        Recorder(str(link), dict)
    assert not (tmp_path / "elsewhere.bpftop").exists()
    write_recording_append = Recorder(str(path), lambda: header(["syscalls"], 2.0, {}, {}), append=True)
    write_recording_append.write("syscalls", syscalls_snapshot(9))
    write_recording_append.close()
    rec = read(str(path))
    assert len(rec.sessions) == 2 and len(rec.frames) == 3 * len(samples()) + 1 and rec.problem == ""
    not_ours = tmp_path / "notes.txt"
    not_ours.write_text("hello")
    with pytest.raises(RecordingError, match="not a bpftop recording"):
        Recorder(str(not_ours), dict, append=True)
    assert not_ours.read_text() == "hello"


def test_crash_loses_at_most_the_last_interval(tmp_path):
    path = tmp_path / "r.bpftop"
    write_recording(path, close=False)  # as if bpftop was killed
    rec = read(str(path))
    assert len(Replay(rec).ticks) == 3
    assert "not closed" in rec.problem


def test_truncated_file_replays_what_is_valid_and_says_where(tmp_path):
    path = tmp_path / "r.bpftop"
    write_recording(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.bpftop"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    rec = read(str(cut))
    assert 0 < len(rec.frames) < 3 * len(samples())
    assert ("ends mid-record" in rec.problem or "not closed" in rec.problem) and f"{len(rec.frames)} snapshots" in rec.problem


def test_corrupt_file(tmp_path):
    path = tmp_path / "r.bpftop"
    write_recording(path)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 40):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.bpftop"
    bad.write_bytes(bytes(data))
    rec = read(str(bad))
    assert rec.problem and len(rec.frames) < 3 * len(samples())
    (tmp_path / "junk").write_bytes(b"\x00" * 100)
    with pytest.raises(RecordingError, match="not a bpftop recording"):
        read(str(tmp_path / "junk"))


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "future.bpftop"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"format": "bpftop-recording", "version": 99}) + "\n")
    with pytest.raises(RecordingError, match=r"newer bpftop .*version 99"):
        read(str(path))
    res = subprocess.run([sys.executable, "-m", "bpftop", "--replay", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "newer bpftop" in res.stderr and "Traceback" not in res.stderr


def test_timeline_step_seek_speed(tmp_path):
    path = tmp_path / "r.bpftop"
    write_recording(path)
    replay = Replay(read(str(path)))
    assert replay.step(1) and replay.position == 1
    assert not replay.step(5) or replay.position == 2
    assert replay.step(-10) and replay.position == 0
    replay.seek(replay.time_at(2) + 100)
    assert replay.position == 2
    replay.seek(replay.parse_time("+0"))
    assert replay.position == 0
    assert [replay.next_speed() for _ in range(3)] == [4.0, 16.0, 1.0]
    with pytest.raises(ReplayError, match="not a time"):
        replay.parse_time("yesterday")


def test_replay_once_prints_a_tab_without_root(tmp_path):
    # Somewhere an unprivileged user can read (pytest's tmp dirs are 0700).
    where = tempfile.mkdtemp(prefix="bpftop-replay-", dir="/tmp")
    os.chmod(where, 0o755)
    path = os.path.join(where, "r.bpftop")
    snaps = write_recording(path)
    os.chmod(path, 0o644)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "bpftop", "--replay", str(path), "--once", "--tab", "tcp"]
    if os.geteuid() == 0:  # prove it needs no root: run as nobody
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert res.returncode == 0, res.stderr
    assert res.stdout == TABS["tcp"].to_text(snaps["tcp"][2])
    res = subprocess.run(cmd + ["--at", "nonsense"], capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert res.returncode == 2 and "is not a time" in res.stderr
    shutil.rmtree(where)


async def test_replay_console_plays_steps_and_snapshots(tmp_path):
    path = tmp_path / "r.bpftop"
    snaps = write_recording(path)
    replay = Replay(read(str(path)))
    tabs = [RecordedTab(t, TABS[t].title, "fake hook") for t in TABS if t in replay.tabs]
    app = BpftopApp(tabs, interval=1.0, replay=replay, capture_dir=tmp_path / "snaps")
    async with app.run_test(size=(110, 32)) as pilot:
        await pilot.pause(0.3)
        assert "REPLAY" in str(app.screen.query_one("#titlebar").render())
        assert "replay, recorded on fake hook" in str(app.screen.query_one("#view-syscalls .tab-status").render())
        table = app.screen.query_one("#syscalls-table", TopTable)
        await pilot.press("p")  # pause playing
        replay.position = 0
        await pilot.press("n")
        assert replay.position == 1 and not replay.playing
        assert table.model.rows[0][1] == snaps["syscalls"][1].rows[0].count
        await pilot.press("b")
        assert replay.position == 0
        await pilot.press("x")
        assert replay.speed == 4.0
        await pilot.press("j")
        await pilot.press("plus", "1", "0", "0", "enter")
        assert replay.position == 2
        await pilot.press("s")
        saved = list((tmp_path / "snaps").iterdir())
        assert len(saved) == 1 and "REPLAY" in saved[0].read_text()
        await pilot.press("space")  # resume: stays at the end
        await pilot.pause(0.3)
        assert replay.position == 2


def test_long_tuples_are_stored_as_changes_and_read_back_exactly(tmp_path):
    from dataclasses import replace

    from bpftop.recording.codec import decode_snapshot, encode_snapshot

    agg = Aggregator()
    snaps = []
    for i in range(1, 40):  # events newest first, bounded; history oldest first
        agg.feed(raw(te.EV_CONNECT, i, sport=0))
        snap = tcp_snapshot(agg, interval=1.0)
        snaps.append(replace(snap, events=snap.events[:25], rate_history=tuple(float(x % 7) for x in range(i, i + 30))))
    previous, total_full, total_delta = None, 0, 0
    for snap in snaps:
        delta = encode_snapshot(snap, previous)
        assert decode_snapshot(json.loads(json.dumps(delta)), previous) == snap
        total_full += len(json.dumps(encode(snap)))
        total_delta += len(json.dumps(delta))
        previous = snap
    assert total_delta < total_full / 3
    path = tmp_path / "tcp.bpftop"
    rec = Recorder(str(path), lambda: header(["tcp"], 1.0, {}, {}))
    for snap in snaps:
        rec.write("tcp", snap)
    rec.close()
    assert [f.snapshot for f in read(str(path)).frames] == snaps


async def test_console_records_what_its_collectors_deliver(tmp_path):
    from fakes import FakeCollector

    path = tmp_path / "console.bpftop"
    app = None
    recorder = Recorder(str(path), lambda: app.recording_header())
    app = BpftopApp([FakeCollector()], interval=0.1, recorder=recorder, pinned=parse("pid=42"))
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#syscalls-table", TopTable)
        for _ in range(100):
            if recorder.records >= 3 and table.model is not None:
                break
            await pilot.pause(0.05)
    recorder.close()
    rec = read(str(path))
    assert rec.problem == "" and len(rec.frames) >= 3
    head = rec.header
    assert head["tabs"] == ["syscalls"] and head["hooks"] == {"syscalls": "fake"}
    assert head["filters"]["pinned"] == "pid=42"
    # The fake delivers snapshot(0), snapshot(1), ...: the file holds them in order.
    for k, frame in enumerate(rec.frames):
        assert frame.tab == "syscalls" and frame.snapshot.rows == syscalls_snapshot(k).rows


def test_hooks_of_collectors_that_come_up_later_reach_the_header(tmp_path):
    path = tmp_path / "late.bpftop"
    snaps = samples()
    rec = Recorder(str(path), lambda: header(list(snaps), 1.0, {}, {}))  # nothing up yet
    for i in range(2):
        rec.write_many([(tab, snaps[tab][i]) for tab in snaps])
    rec.close()
    got = read(str(path))
    assert got.problem == ""
    assert got.header["hooks"] == {tab: snaps[tab][1].hook for tab in snaps}
    assert len(got.frames) == 2 * len(snaps)
