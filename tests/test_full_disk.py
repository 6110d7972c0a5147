"""A recording onto a full file system fails loudly (exit 3, one line on
stderr) and what was written before it replays. A tiny tmpfs, mounted for
the test, fills up (root)."""

import os
import subprocess
import sys

import pytest
from bpfprogs import prog_ids, wait_until_gone

from bpftop.recording.file import RecordingLost, read

pytestmark = pytest.mark.bpf


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_batch_recording_on_a_full_disk_fails_and_keeps_what_was_written(tiny_fs):
    path = tiny_fs / "rec.bpftop"
    before = prog_ids()
    res = subprocess.run(
        [sys.executable, "-m", "bpftop", "--json", "-n", "3000", "-d", "0.1", "--tab", "syscalls", "--tab", "tcp",
         "--record", str(path)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == RecordingLost.exit_code == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert wait_until_gone(before) == []
    # Every interval printed was recorded; the file replays them all.
    printed = len(res.stdout.splitlines())
    assert printed > 3
    rec = read(str(path))
    assert len(rec.frames) == 2 * printed
    replay = subprocess.run([sys.executable, "-m", "bpftop", "--replay", str(path), "--once", "--tab", "tcp"],
                            capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.startswith("bpftop tcp")


def test_console_recording_on_a_full_disk_is_shown_and_exits_3(tiny_fs, tmp_path):
    """The console keeps running, says so in its title line until it exits,
    then exits 3; driven in a real terminal through tmux."""
    import shlex
    import time

    from test_exit_paths import tmux

    path = tiny_fs / "rec.bpftop"
    status = tmp_path / "status"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # stderr is the console's terminal: the exit line shows in the pane.
    cmd = (f"cd {shlex.quote(root)} && {shlex.quote(sys.executable)} -m bpftop -d 0.1 --record {shlex.quote(str(path))}"
           f"; echo $? > {shlex.quote(str(status))}; sleep 60")
    before = prog_ids()
    tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "30", "sh", "-c", cmd)
    try:
        deadline = time.monotonic() + 60
        shown = ""
        while time.monotonic() < deadline:
            shown = tmux("capture-pane", "-p", "-t", "t").stdout
            if "RECORDING STOPPED" in shown:
                break
            time.sleep(0.3)
        # The title line may cut the reason (its length depends on the host's
        # name and kernel release); the exit line below gives it whole.
        assert "RECORDING STOPPED" in shown, shown
        tmux("send-keys", "-t", "t", "q")
        deadline = time.monotonic() + 30
        while not (status.exists() and status.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        shown = tmux("capture-pane", "-p", "-J", "-t", "t").stdout  # -J: wrapped lines joined
        assert status.read_text().strip() == "3", shown
        assert "bpftop: recording stopped: cannot write" in shown and "No space left on device" in shown, shown
        assert "Traceback" not in shown
    finally:
        tmux("kill-server")
    assert wait_until_gone(before) == []
    assert read(str(path)).frames
