"""Headless streaming and recording with the real collectors (root): JSON
Lines per interval, clean exits on SIGPIPE/SIGTERM/SIGINT with everything
detached, and a recording that replays to exactly what was shown live."""

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bpftop.recording.file import Recorder, header, read
from bpftop.recording.replay import Replay
from bpftop.tabs import TABS, CollectorOptions

from bpfprogs import assert_signal_exit, prog_ids, wait_until_gone, wait_until_loaded

pytestmark = pytest.mark.bpf

BPFTOP = [sys.executable, "-m", "bpftop"]


def test_record_then_replay_shows_exactly_what_was_live(tmp_path):
    path = tmp_path / "live.bpftop"
    specs = list(TABS.values())
    collectors = [spec.make_collector(CollectorOptions()) for spec in specs]
    live = []
    recorder = Recorder(str(path), lambda: header([s.id for s in specs], 0.4, {c.tab: c.hook for c in collectors}, {}))
    try:
        for c in collectors:
            c.start()
        for _ in range(3):
            time.sleep(0.4)
            with open("/etc/hostname", "rb") as f:  # a little of everything
                f.read()
            snaps = [(c.tab, c.collect()) for c in collectors]
            recorder.write_many(snaps)
            live.append({tab: TABS[tab].to_text(snap) for tab, snap in snaps})
    finally:
        for c in collectors:
            c.stop()
        recorder.close()
    replay = Replay(read(str(path)))
    assert replay.recording.problem == "" and len(replay.ticks) == 3
    assert set(replay.recording.header["hooks"]) == {s.id for s in specs}
    for i, shown in enumerate(live):
        replayed = {tab: TABS[tab].to_text(snap) for tab, snap in replay.snapshots(i).items()}
        assert replayed == shown
    # The same through the command line, at the second interval's time.
    at = datetime.datetime.fromtimestamp(replay.time_at(1)).isoformat()
    for tab in ("syscalls", "disk"):
        res = subprocess.run(BPFTOP + ["--replay", str(path), "--once", "--tab", tab, "--at", at],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stdout == live[1][tab]


def test_json_lines_one_object_per_interval_and_record(tmp_path):
    rec = tmp_path / "r.bpftop"
    before = prog_ids()
    res = subprocess.run(BPFTOP + ["--json", "-n", "3", "-d", "0.3", "--tab", "syscalls", "--tab", "tcp",
                                   "--record", str(rec)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    objs = [json.loads(line) for line in lines]
    assert [o["interval"] for o in objs] == [1, 2, 3]
    assert all(set(o["tabs"]) == {"syscalls", "tcp"} for o in objs)
    assert objs[0]["tabs"]["syscalls"]["tab"] == "syscalls" and "rows" in objs[0]["tabs"]["tcp"]
    replay = Replay(read(str(rec)))
    assert len(replay.ticks) == 3 and set(replay.tabs) == {"syscalls", "tcp"}
    # One tab: each line is that tab's object of the contract, as --once gives.
    res = subprocess.run(BPFTOP + ["--json", "-n", "2", "-d", "0.2", "--tab", "cache"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [json.loads(line)["tab"] for line in res.stdout.splitlines()] == ["cache", "cache"]
    # Plain text, like top -b.
    res = subprocess.run(BPFTOP + ["-b", "-n", "2", "-d", "0.2", "--tab", "disk"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.count("bpftop disk") == 2
    assert wait_until_gone(before) == []
    # Never overwrite: a second run with the same --record refuses before loading anything.
    res = subprocess.run(BPFTOP + ["--json", "-n", "1", "--record", str(rec)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "never overwrites" in res.stderr


def test_piping_into_head_ends_cleanly():
    before = prog_ids()
    cmd = " ".join(BPFTOP) + " --json -d 0.2 --tab syscalls 2>/tmp/bpftop-pipe-err | head -n 2; echo ${PIPESTATUS[0]}"
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    out = res.stdout.splitlines()
    assert len(out) == 3 and json.loads(out[0])["tab"] == "syscalls"
    assert out[2] == "141"  # SIGPIPE's exit code, like any well-behaved filter
    err = open("/tmp/bpftop-pipe-err").read()
    os.unlink("/tmp/bpftop-pipe-err")
    assert "Traceback" not in err and "Exception" not in err, err
    assert wait_until_gone(before) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stream_stops_on_signals_with_everything_detached(sig, code):
    before = prog_ids()
    proc = subprocess.Popen(BPFTOP + ["--json", "-d", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until_loaded(before)
        first = proc.stdout.readline()
        assert set(json.loads(first)["tabs"]) == set(TABS)
    except AssertionError:
        proc.kill()
        raise
    assert_signal_exit(proc, sig, code, before)
