"""Every way out detaches every program: q, Ctrl-C, SIGTERM, SIGHUP (an SSH
session dropping), in the TUI on a real terminal (tmux) and in --once.

The kernel matrix runs the SIGHUP case: every tab on the rung each stock
kernel chooses (kprobes for the cache tab there), released by the path an
SSH drop takes. The other ways out differ only in Python, and each costs
minutes of compiles in an emulated guest."""

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from bpfprogs import assert_signal_exit, prog_ids, wait_until_gone, wait_until_loaded
from testenv import TIME_SCALE, scaled

pytestmark = pytest.mark.bpf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tmux(*args):
    # A server of this test process's own: another test run on the machine
    # uses its own.
    return subprocess.run(["tmux", "-L", f"bpftop-test-{os.getpid()}", *args], capture_output=True, text=True,
                          check=False)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.fixture
def tui(need_tmux, tmp_path):
    """bpftop in a real terminal; yields (programs before, pid, status file)."""
    status, pidfile = tmp_path / "status", tmp_path / "pid"
    # In an emulated kernel-matrix guest every compile takes tens of
    # seconds: one collector there; the way out is the same for all.
    probes = " --probes syscalls" if TIME_SCALE > 1 else ""
    inner = f"echo $$ > {shlex.quote(str(pidfile))}; exec {shlex.quote(sys.executable)} -m bpftop -d 0.5{probes}"
    cmd = f"cd {shlex.quote(ROOT)} && sh -c {shlex.quote(inner)}; echo $? > {shlex.quote(str(status))}; sleep 60"
    before = prog_ids()
    tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "sh", "-c", cmd)
    try:
        assert wait_until_loaded(before), f"bpftop never loaded its programs; screen:\n{screen()}"
        yield before, int(pidfile.read_text()), status
    finally:
        tmux("kill-server")


def screen():
    return tmux("capture-pane", "-p", "-t", "t").stdout


def wait_exit(pid, status, timeout=15.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if not alive(pid) and status.exists() and status.read_text().strip():
            return int(status.read_text())
        time.sleep(0.1)
    raise AssertionError(f"bpftop did not exit; screen:\n{screen()}")


@pytest.mark.parametrize(
    "how, code",
    [("key q", 0), ("key C-c", 0), ("SIGTERM", 143), pytest.param("SIGHUP", 129, marks=pytest.mark.matrix)],
)
def test_tui_exit_detaches_everything(tui, how, code):
    before, pid, status = tui
    # Wait for the first data on screen, so the exit happens mid-run. The
    # first program loaded may be another tab's: the syscalls tab can wait
    # for the others' compiles, which take long on a busy machine.
    deadline = time.monotonic() + scaled(60)
    while not ("running on BTF raw tracepoints" in screen() and "SYSCALL" in screen()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "running on BTF raw tracepoints" in screen() and "SYSCALL" in screen(), screen()
    if how.startswith("key"):
        tmux("send-keys", "-t", "t", how.split()[1])
    else:
        os.kill(pid, getattr(signal, how))
    assert wait_exit(pid, status) == code
    assert wait_until_gone(before) == []
    assert "Traceback" not in screen()


@pytest.mark.parametrize("sig, code", [
    (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_once_killed_mid_interval_detaches(sig, code):
    before = prog_ids()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bpftop", "--once", "-d", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_until_loaded(before)
    except AssertionError:
        proc.kill()
        raise
    assert_signal_exit(proc, sig, code, before, timeout=scaled(15))


def test_sigkill_leaves_nothing_either():
    """Even without any clean-up code running, the kernel frees programs whose
    last file descriptor closed: bpftop pins nothing."""
    before = prog_ids()
    proc = subprocess.Popen([sys.executable, "-m", "bpftop", "--once", "-d", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_loaded(before)
    finally:
        proc.kill()
        proc.wait()
    assert wait_until_gone(before) == []
