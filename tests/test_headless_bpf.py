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
from bpfprogs import assert_signal_exit, prog_ids, wait_until_gone, wait_until_loaded

from bpftop.recording.file import Recorder, header, read
from bpftop.recording.replay import Replay
from bpftop.tabs import TABS, CollectorOptions

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


# Breaks the maps of a real run for one read: after the first JSON line, every
# BPF map fd the run opened is pointed at /dev/null (dup2, so no other open can
# take the number meanwhile), and put back once the error reaches stderr.
_BREAK_MAPS = r"""
import json, os, sys, time
from bpftop import cli

def bpf_maps():
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-map":
                out.add(int(fd))
        except OSError:
            pass
    return out

before = bpf_maps()
saved = {}
broken = []
times = []

class Out:
    def write(self, text):
        sys.__stdout__.write(text)
        if text.endswith("\n"):
            times.append(time.monotonic())
            if len(times) == 1:
                null = os.open("/dev/null", os.O_RDONLY)
                for fd in bpf_maps() - before:
                    saved[fd] = os.dup(fd)
                    os.dup2(null, fd)
                    broken.append(fd)
                os.close(null)
        return len(text)

    def flush(self):
        sys.__stdout__.flush()

class Err:
    def write(self, text):
        sys.__stderr__.write(text)
        if "read failed" in text:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            saved.clear()
        return len(text)

    def flush(self):
        sys.__stderr__.flush()

sys.stdout, sys.stderr = Out(), Err()
rc = cli.main(sys.argv[1:])
sys.__stderr__.write("TEST %s\n" % json.dumps({"broken": len(broken), "times": times}))
sys.exit(rc)
"""


def test_json_read_error_is_said_and_retried_with_back_off():
    """A map read that fails mid-run (here: the run's map fds made invalid
    for one read) is one clear line on stderr, retried after a back-off of
    1 s; the stream goes on with the tab's next interval and exits 0, with
    no traceback and no "internal error"."""
    before = prog_ids()
    res = subprocess.run([sys.executable, "-c", _BREAK_MAPS, "--json", "-n", "3", "-d", "0.3", "--tab", "syscalls"],
                         capture_output=True, text=True, timeout=120)
    err = res.stderr.splitlines()
    test = json.loads(next(line for line in err if line.startswith("TEST "))[5:])
    assert res.returncode == 0, res.stderr
    assert test["broken"] > 0
    assert [json.loads(line)["tab"] for line in res.stdout.splitlines()] == ["syscalls"] * 3
    failed = [line for line in err if "read failed" in line]
    assert len(failed) == 1, res.stderr
    assert failed[0].startswith("bpftop: syscalls: read failed (") and failed[0].endswith("; retrying in 1s")
    assert "bpftop: syscalls: reading again" in err
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    times = test["times"]
    # The failed read came one interval after the first line; the retry a
    # back-off (1 s) later, then the beat of 0.3 s again.
    assert times[1] - times[0] >= 1.0 + 0.3 - 0.05
    assert times[2] - times[1] < 1.0
    assert wait_until_gone(before) == []
