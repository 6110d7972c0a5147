"""The console without a terminal, losing its terminal, or stuck writing to
one: it refuses to start, or it ends (129 for a lost terminal, 128+signal)
within 5 s with nothing of ours left loaded. Each of these hung forever at
100% CPU with every program attached before the lifeline."""

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from bpfprogs import ours, prog_ids, prog_list, wait_until_gone, wait_until_loaded
from ptyrun import PtyRun
from test_console_e2e import sshd  # noqa: F401  (fixture)
from test_exit_paths import alive
from testenv import scaled

pytestmark = pytest.mark.bpf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPFTOP = [sys.executable, "-m", "bpftop"]


def wait_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def bpftop_pid(before_pids, timeout=30.0):
    """The bpftop started since ``before_pids`` (its programs are loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in before_pids:
                try:
                    cmd = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if (b"bpftop" in cmd and b"-m" in cmd and cmd[0].endswith(b"python")) or (cmd[:1] == [sys.executable.encode()] and b"bpftop" in cmd):
                    return int(entry)
        time.sleep(0.1)
    raise AssertionError("bpftop never started")


def pids():
    return {int(e) for e in os.listdir("/proc") if e.isdigit()}


@pytest.mark.parametrize("stdin, stdout", [("pipe", "tty"), ("tty", "pipe"), ("pipe", "pipe")])
def test_console_without_a_terminal_refuses_at_once(stdin, stdout):
    before = prog_ids()
    if stdin == "tty" or stdout == "tty":
        # A terminal on one side only: a pty for that side.
        import pty
        master, slave = pty.openpty()
        res = subprocess.run(BPFTOP, stdin=slave if stdin == "tty" else subprocess.PIPE,
                             stdout=slave if stdout == "tty" else subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=30)
        os.close(master)
        os.close(slave)
    else:
        res = subprocess.run(BPFTOP, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "-b" in res.stderr and "--json" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert wait_until_gone(before, 0) == []  # nothing was ever loaded


def test_ssh_without_t_then_client_killed(sshd, tmp_path):  # noqa: F811
    """``ssh host bpftop``: no terminal, so bpftop refuses in one line and
    loads nothing, instead of drawing the console into a pipe."""
    ssh, _log = sshd
    ssh = ssh.replace("ssh -tt ", "ssh -T ")
    before = prog_ids()
    remote = shlex.quote(f"cd {shlex.quote(ROOT)} && {shlex.quote(sys.executable)} -m bpftop")
    client = subprocess.Popen(f"{ssh} {remote}", shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 2, err
    assert "needs a terminal" in err and "Traceback" not in err
    assert wait_until_gone(before) == []


def test_pane_closed_while_the_shell_ignores_sighup(need_tmux, tmp_path):
    """tmux closes the pty; the shell (session leader) ignores SIGHUP so
    none is sent on to bpftop: it sees the hang-up on its terminal."""
    from test_exit_paths import tmux

    status, pidfile = tmp_path / "status", tmp_path / "pid"
    inner = f"echo $$ > {shlex.quote(str(pidfile))}; exec {shlex.quote(sys.executable)} -m bpftop -d 0.5"
    cmd = (f"trap '' HUP; cd {shlex.quote(ROOT)} && sh -c {shlex.quote(inner)}; "
           f"echo $? > {shlex.quote(str(status))}")
    before = prog_ids()
    tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "sh", "-c", cmd)
    try:
        assert wait_until_loaded(before)
        pid = int(pidfile.read_text())
        time.sleep(1.0)
    finally:
        tmux("kill-server")  # the pane and its pty go away
    assert wait_gone(pid, 5.0), "bpftop still running 5 s after its terminal went away"
    assert wait_until_gone(before) == []
    deadline = time.monotonic() + 5
    while not (status.exists() and status.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status.read_text().strip() == "129"


def test_terminal_lost_while_the_console_quits():
    """q while the tabs compile, then the terminal hangs up while the console
    is on its way out. The kernel sends the session leader SIGCONT with
    SIGHUP; Textual's driver took any SIGCONT as the end of a Ctrl-Z and put
    the terminal back into application mode after the UI had ended, with an
    input thread that spun on the dead terminal and kept the process alive
    for good at 70% of a core."""
    before = prog_ids()
    term = PtyRun(BPFTOP + ["-d", "0.5"], width=100, height=30)
    try:
        assert term.wait_for(b"SYSCALL", timeout=60)  # the first frame: compiles begin
        term.send(b"q")
        assert term.wait_for(b"\x1b[?1049l", timeout=scaled(30)), "the console never left the screen"
        term.hangup()  # the terminal hangs up
        deadline = time.monotonic() + scaled(10)
        while term.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert term.poll() is not None, "bpftop still running 10 s after it quit and its terminal went away"
    finally:
        term.close()
    assert wait_until_gone(before, 0) == []


def test_a_stop_and_continue_leave_and_redraw_the_screen():
    """SIGTSTP (a job-control stop) leaves the screen and stops the
    process; SIGCONT brings the console back; a SIGCONT nobody stopped
    for changes nothing."""
    term = PtyRun(BPFTOP + ["-d", "0.5"], width=100, height=30)
    try:
        assert term.wait_for(b"SYSCALL", timeout=60)  # Textual's frame: it is in application mode
        drawn = len(term.output)
        os.kill(term.pid, signal.SIGCONT)  # not stopped: nothing to resume
        term.pump(0.5)
        assert b"\x1b[?1049h" not in term.output[drawn:]
        os.kill(term.pid, signal.SIGTSTP)
        assert term.wait_for(b"\x1b[?1049l", timeout=scaled(10)), "the screen was not left"
        deadline = time.monotonic() + scaled(10)
        while state(term.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(term.pid) == "T", "not stopped"
        mark = len(term.output)
        os.kill(term.pid, signal.SIGCONT)
        assert term.wait_after(mark, b"\x1b[?1049h", scaled(10)), "the console did not come back"
        term.send(b"q")
        assert term.wait(scaled(30)) == 0
    finally:
        term.close()


def test_keys_after_a_character_split_across_reads_and_a_lone_escape():
    """The console's input thread waits for input without a timeout: a
    character whose bytes arrive in two reads is one character, a lone Esc
    is a key once the parser's wait for the rest of a sequence runs out,
    and the keys after both still work."""
    term = PtyRun(BPFTOP + ["-d", "0.5"], width=100, height=30)
    try:
        assert term.wait_for(b"SYSCALL", timeout=60)
        term.send(b"/")
        assert term.wait_for(b"filter Syscalls", timeout=scaled(10))
        mark = len(term.output)
        term.send("é".encode()[:1])
        term.pump(0.3)
        term.send("é".encode()[1:])
        assert term.wait_after(mark, "é".encode(), scaled(10)), "the split character never showed"
        term.send(b"\x1b")  # a lone Esc: closes the filter prompt
        term.pump(0.5)
        mark = len(term.output)
        term.send(b"2")
        assert term.wait_after(mark, b"IOPS", scaled(10)), "a tab key after the Esc did nothing"
        term.send(b"q")
        assert term.wait(scaled(30)) == 0
    finally:
        term.close()


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signal_while_the_terminal_does_not_read(sig, code):
    """A terminal that stops reading (flow control, a stuck client): the
    output thread blocks, its queue fills, the UI thread blocks on it. A
    signal still ends bpftop within 5 s, everything detached."""
    before = prog_ids()
    term = PtyRun(BPFTOP + ["-d", "0.1"], width=200, height=60)
    try:
        assert term.wait_for(b"SYSCALL", timeout=60)
        # Read while the tabs compile: the terminal stops reading only once
        # programs are in (a stuck terminal from the first frame may hold the
        # console up before it loads any, which is not what this is about).
        deadline = time.monotonic() + scaled(60)
        while not ours(prog_list(), before) and time.monotonic() < deadline:
            term.pump(0.2)
        assert ours(prog_list(), before), "no program loaded"
        time.sleep(4.0)  # nobody reads: the pty buffer and Textual's queue fill up
        os.kill(term.pid, sig)
        deadline = time.monotonic() + 5.0
        while term.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # still not reading
        assert term.poll() == code, "bpftop did not end within 5 s"
    finally:
        term.close()
    assert wait_until_gone(before) == []


def test_headless_into_a_full_pipe_ends_on_sigterm():
    before = prog_ids()
    r, w = os.pipe()
    proc = subprocess.Popen(BPFTOP + ["-b", "-d", "0.1"], stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    try:
        assert wait_until_loaded(before)
        time.sleep(4.0)  # the pipe fills: nobody reads it
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        assert proc.returncode == 143
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(r)
    assert wait_until_gone(before) == []
