"""The real bpftop in a real terminal (tmux) as root, and over a real SSH
session: switch tabs, filter, switch a probe off and on (bpftool confirms),
save a snapshot, quit; nothing of ours stays loaded."""

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from bpfprogs import ours, prog_ids, prog_list, quiet_sampler, tag_env, wait_until_gone
from terminal import Terminal, active_tab
from testenv import scaled

from bpftop.priority import groups_enabled, read_group_nice
from bpftop.tabs import TABS

pytestmark = pytest.mark.bpf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Starts kept in task storage (ts) where the kernel takes it, else the LRU hash (sc).
SYSCALL_PROGS = ("bpftop_ts_exit", "bpftop_ts_enter", "bpftop_sc_exit", "bpftop_sc_enter")
# Column headers only each tab shows.
TAB_MARKERS = {"syscalls": "SYSCALL", "disk": "MB/s", "tcp": "DESTINATION", "cache": "MISSES", "procs": "FORKS",
               "bpf": "EVENTS/S"}
TAB_LABELS = [f"{i} {spec.title}" for i, spec in enumerate(TABS.values(), start=1)]


def bpftop_cmd(*args):
    # The tag marks its programs as this run's, also where the environment
    # does not pass (sshd starts the session afresh).
    return (f"cd {shlex.quote(ROOT)} && env {shlex.quote(tag_env())} {shlex.quote(sys.executable)} -m bpftop "
            + " ".join(map(shlex.quote, args)))


def syscall_prog_ids(before):
    return {p["id"] for p in ours(prog_list(), before) if p.get("name") in SYSCALL_PROGS}


def wait_programs(before, present, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = syscall_prog_ids(before)
        if bool(ids) == present:
            return ids
        time.sleep(0.2)
    raise AssertionError(f"syscall programs {'never appeared' if present else 'still loaded'}: {prog_list()}")


@pytest.fixture
def term(need_tmux):
    t = Terminal("bpftop-e2e", 100, 30)
    yield t
    t.close()


def test_console_end_to_end(term, tmp_path):
    snaps = tmp_path / "snaps"
    before = prog_ids()
    term.start(bpftop_cmd("-d", "0.5", "--snapshot-dir", str(snaps)) + f"; echo EXIT=$? > {tmp_path}/rc")
    first = wait_programs(before, True)
    term.wait_for("SYSCALL")

    # Each tab by its number, then all in a burst: the last key wins.
    for i, spec in enumerate(TABS.values(), start=1):
        term.keys(str(i))
        term.wait_for(lambda s, marker=TAB_MARKERS[spec.id]: marker in s and ("running on" in s or "failed" in s))
    for key in "23411":
        term.keys(key)
    term.wait_steady(lambda s: showing(s, "1"), what="tab 1")

    term.keys("/")
    term.wait_for("filter Syscalls")
    term.type("comm~^bpftop$")
    term.keys("Enter")
    term.wait_for("filter: comm~^bpftop$")
    shown = term.wait_for(lambda s: "COMM" in s and "python" not in s.split("COMM", 1)[1])

    term.keys("P")
    term.wait_for("PROBE")
    term.keys("Space")
    wait_programs(before, False)
    term.wait_for("detached")
    term.keys("Space")
    again = wait_programs(before, True)
    assert again and not (again & first)  # compiled and attached anew
    term.keys("Escape")
    term.wait_for("SYSCALL")

    title = term.screen().splitlines()[0].strip()
    term.keys("s")
    term.wait_for(lambda s: "saved" in s and snaps.exists() and any(snaps.iterdir()))
    files = list(snaps.iterdir())
    assert len(files) == 1
    text = files[0].read_text()
    assert text.startswith("# bpftop snapshot  host ")
    assert "filters: syscalls: comm~^bpftop$" in text.splitlines()[0]
    assert title.split("interval")[0].strip() in text
    assert "filter: comm~^bpftop$" in text and "\x1b" not in text

    term.keys("q")
    deadline = time.monotonic() + 20
    while not (tmp_path / "rc").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "rc").read_text().strip() == "EXIT=0"
    assert wait_until_gone(before) == []
    assert "Traceback" not in term.screen()
    del shown


def showing(screen, key):
    """Tab ``key`` is underlined and, once its collector runs, its pane is
    the one on screen."""
    spec = list(TABS.values())[int(key) - 1]
    if active_tab(screen, TAB_LABELS) != TAB_LABELS[int(key) - 1]:
        return False
    if "running on" in screen:
        return all((marker in screen) == (tab == spec.id) for tab, marker in TAB_MARKERS.items())
    return True


def test_tab_key_bursts_last_key_wins(term):
    """Bursts of tab keys typed ahead, as over SSH, from the first frame
    while the tabs still compile until all run: the last key's tab shows,
    and stays. Some bursts arrive in one read, some key by key."""
    rng = random.Random()
    before = prog_ids()
    # No underline animation: the tab bar shows where it ends at once.
    term.start(bpftop_cmd("-d", "0.5"), env={"TEXTUAL_ANIMATIONS": "none"})
    term.wait_for(lambda s: active_tab(s, TAB_LABELS) is not None)
    loaded_at_send = []  # how many of the console's programs were loaded as each burst went
    tab_keys = "".join(str(i) for i in range(1, len(TAB_LABELS) + 1))
    for n in range(50):
        keys = [rng.choice(tab_keys) for _ in range(rng.randint(3, 6))]
        loaded_at_send.append(len(ours(prog_list(), before)))
        if rng.random() < 0.5:
            term.keys(*keys)  # one write: the keys arrive together
        else:
            for key in keys:
                term.keys(key)
        try:
            last = keys[-1]
            term.wait_steady(lambda s, last=last: showing(s, last), samples=4, what=f"tab {keys[-1]}")
        except AssertionError as e:
            raise AssertionError(f"burst {n} {''.join(keys)}: {e}") from None
    # The first bursts went while the tabs still compiled: the compiles
    # start only once the first frame is drawn, and take seconds. (Which
    # tab a burst ends on is random: the screen cannot tell this.)
    final = len(ours(prog_list(), before))
    assert final and loaded_at_send[0] < final, (loaded_at_send[:5], final)
    term.keys("q")
    assert wait_until_gone(before, timeout=20) == []


def console_pid(term):
    """The console's pid: the pane's shell runs it as its child."""
    shell = int(term.tmux("list-panes", "-t", "t", "-F", "#{pane_pid}").stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{shell}/task/{shell}/children") as f:
            children = [int(c) for c in f.read().split()]
        if children:
            return shell, children[0]
        time.sleep(0.1)
    raise AssertionError("the console never started")


def thread_nices(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            out.append(int(f.read().rsplit(")", 1)[1].split()[16]))  # field 19: nice
    return out


def group_nice(pid):
    return read_group_nice(f"/proc/{pid}/autogroup")


@pytest.mark.parametrize("args, nice", [((), -10), (("--nice", "-4"), -4), (("--nice", "0"), 0)])
def test_the_console_runs_at_its_priority_and_gives_the_session_back(term, tmp_path, args, nice):
    """Every thread of the console (the collection and event threads too,
    started after it) runs at the console's nice; where the kernel groups
    tasks by session, so does its session's group while it runs, and the
    group's nice is the shell's again once the console has quit."""
    before = prog_ids()
    term.start(bpftop_cmd("-d", "0.5", *args) + f"; echo EXIT=$? > {tmp_path}/rc")
    shell, pid = console_pid(term)
    term.wait_for("SYSCALL")
    wait_programs(before, True)
    nices = thread_nices(pid)
    assert len(nices) >= 4 and set(nices) == {nice}, nices
    if groups_enabled():
        assert group_nice(pid) == nice
    term.keys("q")
    deadline = time.monotonic() + 20
    while not (tmp_path / "rc").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "rc").read_text().strip() == "EXIT=0"
    if groups_enabled():
        assert group_nice(shell) == 0  # the shell's session, now without the console
    assert wait_until_gone(before, timeout=20) == []


def wait_all_loaded(before, quiet=2.0, timeout=60.0):
    """Until the console's programs stop appearing (every tab up)."""
    deadline = time.monotonic() + timeout
    seen, since = set(), time.monotonic()
    while time.monotonic() < deadline:
        now = set(prog_ids()) - set(before)
        if now != seen:
            seen, since = now, time.monotonic()
        elif seen and time.monotonic() - since >= quiet:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"the console's programs kept changing: {prog_list()}")


def own_calls_per_second(counter, pid, seconds):
    counter.collect()
    began = time.monotonic()
    time.sleep(seconds)
    snap = counter.collect()
    took = time.monotonic() - began
    return sum(p.count for p in snap.processes if p.pid == pid) / took


def test_the_console_makes_few_syscalls_of_its_own_on_an_idle_machine(term, shared_collectors):
    """Its own row on its Syscalls tab is unremarkable (issue 16), counted
    by a syscalls program of the test's own: 414 to 594 a second before the
    BPF tab stopped walking every program and map in the kernel each second
    while hidden, 65 after (489 while the BPF tab is on screen: its walk is
    that tab's work, and stops again when another tab is shown)."""
    from bpftop.collectors.syscalls import SyscallsCollector

    counter = shared_collectors.get(SyscallsCollector)
    before = prog_ids()
    term.start(bpftop_cmd("-d", "1"))
    _, pid = console_pid(term)
    term.wait_for("SYSCALL")
    wait_all_loaded(before)
    time.sleep(2)  # every tab has had its first reading
    with quiet_sampler():  # the harness's own 500 opens a second: the console would read them
        idle = own_calls_per_second(counter, pid, 10)
        term.keys("6")
        term.wait_for("programs")
        walking = own_calls_per_second(counter, pid, 5)
        term.keys("1")
        term.wait_for("SYSCALL")
        time.sleep(1)
        again = own_calls_per_second(counter, pid, 5)
    term.keys("q")
    assert wait_until_gone(before, timeout=20) == []
    assert idle < 150, f"{idle:.0f} syscalls a second of its own, idle on the Syscalls tab"
    assert again < 150 and walking > again, (walking, again)


@pytest.mark.parametrize("env", [
    {"TERM": "xterm-256color"},
    {"TERM": "screen"},
    {"TERM": "linux"},
    {"TERM": "xterm-256color", "NO_COLOR": "1"},
])
def test_terminals_and_resize(term, tmp_path, env):
    before = prog_ids()
    term.width, term.height = 80, 24
    term.start(bpftop_cmd("-d", "0.5", "--probes", "syscalls") + f"; echo EXIT=$? > {tmp_path}/rc", env=env)
    term.wait_for("SYSCALL")
    term.keys("?")
    term.wait_for("bpftop keys")
    term.keys("Escape")
    term.wait_for(lambda s: "bpftop keys" not in s)
    for w, h in [(40, 10), (200, 60), (80, 24), (20, 5), (80, 24)]:
        term.resize(w, h)
        time.sleep(0.3)
    term.wait_for("SYSCALL")
    term.keys("q")
    deadline = time.monotonic() + 20
    while not (tmp_path / "rc").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "rc").read_text().strip() == "EXIT=0", term.screen()
    assert wait_until_gone(before) == []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """A private sshd on a spare loopback port with its own host key and a
    key authorised for this test only; yields the ssh command prefix."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin) or not shutil.which("ssh"):
        pytest.fail("openssh-server and openssh-client are needed (make test installs them)")
    d = tmp_path / "ssh"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\nAcceptEnv TERM\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = d / "sshd.log"
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)], stderr=open(log, "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"sshd did not start: {log.read_text()}")
    ssh = (f"ssh -tt -i {d / 'client'} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           "-o LogLevel=ERROR -o BatchMode=yes root@127.0.0.1")
    try:
        yield ssh, log
    finally:
        proc.terminate()
        proc.wait(10)


def test_over_ssh_keys_work_and_killing_the_client_detaches(term, sshd, tmp_path):
    ssh, log = sshd
    before = prog_ids()
    pidfile = tmp_path / "ssh.pid"
    # exec: bpftop is the session's process, as when an operator logs in.
    remote = shlex.quote(bpftop_cmd("-d", "0.5", "--probes", "syscalls").replace("&& ", "&& exec ", 1))
    term.start(f"echo $$ > {pidfile}; exec {ssh} {remote}", env={"TERM": "xterm-256color"})
    try:
        term.wait_for("SYSCALL", timeout=40)
    except AssertionError as e:
        raise AssertionError(f"{e}\nsshd log:\n{log.read_text()}") from None
    assert syscall_prog_ids(before)
    term.keys("/")
    term.wait_for("filter Syscalls")
    term.type("syscall=read")
    term.keys("Enter")
    term.wait_for("filter: syscall=read")
    term.keys("?")
    term.wait_for("bpftop keys")
    term.keys("Escape")
    term.wait_for(lambda s: "bpftop keys" not in s)
    term.keys(">")
    term.wait_for("PER SEC v")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the SSH client dies: sshd hangs up bpftop
    assert wait_until_gone(before, timeout=20) == []


def test_probes_screen_shows_its_cost_columns_with_numbers_at_80x24(term, tmp_path):
    """The columns that say what a probe costs (events/s, ns per run, % of
    a CPU) are on screen at 80x24, with figures from the kernel's run-time
    statistics; the long program and hook names are past them and whole in
    the selected row's detail line."""
    before = prog_ids()
    term.width, term.height = 80, 24
    term.start(bpftop_cmd("-d", "0.5", "--probes", "syscalls", "--latency") + f"; echo EXIT=$? > {tmp_path}/rc")
    term.wait_for("SYSCALL")
    term.keys("P")
    header = next(line for line in term.wait_for("CPU %").splitlines() if "PROBE" in line)
    assert header.split()[:7] == ["PROBE", "STATE", "EVENTS/s", "AVG", "ns", "CPU", "%"], header

    def figure(cell):
        try:
            return float(cell.rstrip("kMG"))
        except ValueError:
            return None  # "-" until the second sample

    def attached_with_figures(shown):
        # The tab's own program, and its latency probe's two (rows of their own).
        rows = [cells[:1] + cells[2:] if cells[1] == "latency" else cells
                for cells in (line.split() for line in shown.splitlines())
                if cells[:2] == ["syscalls", "attached"] or cells[:3] == ["syscalls", "latency", "attached"]]
        # The host's own work makes syscalls and context switches every
        # interval: all three programs run.
        return len(rows) == 3 and all((figure(r[2]) or 0) > 0 and (figure(r[3]) or 0) > 0
                                      and figure(r[4]) is not None for r in rows)

    shown = term.wait_for(attached_with_figures)
    assert attached_with_figures(shown), shown
    assert "syscalls: bpftop_" in shown and " on BTF raw tracepoints" in shown  # the detail line
    term.keys("Escape")  # alone: Escape then q at once reads as Alt+q
    term.wait_for(lambda shown: "CPU %" not in shown)
    term.keys("q")
    deadline = time.monotonic() + 20
    while not (tmp_path / "rc").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "rc").read_text().strip() == "EXIT=0", term.screen()
    assert wait_until_gone(before) == []


# What must be on screen of each tab at any size from 80x24 up: the columns
# that say what the tab is about (the rest may elide or sit in a detail line).
KEY_COLUMNS = {
    "syscalls": ["SYSCALL", "COUNT", "ERRORS", "PID", "COMM", "SYSCALLS"],
    "disk": ["DISK", "IOPS", "MB/s", "P99 us", "INFL"],
    "tcp": ["DESTINATION", "CONNECTS", "FAILED", "AVG ms", "COMM", "RESULT", "LAT ms"],
    "cache": ["PID", "COMM", "HITS", "MISSES", "DIRTIES", "READ_HIT%"],
    "procs": ["PID", "COMM", "EXECS", "EXITS", "FORKS", "OPENS", "LIVED ms"],
    "bpf": ["ID", "TYPE", "NAME", "RUNS", "AVG_NS", "CPU%"],
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_every_tab_and_the_probes_screen_show_their_key_columns(term, size):
    """The real console in a real terminal at 80x24 and 120x40: each tab
    shows its key columns, and the probes screen its cost columns."""
    assert set(KEY_COLUMNS) == set(TABS), "a new tab needs its key columns here"
    before = prog_ids()
    term.width, term.height = size
    term.start(bpftop_cmd("-d", "0.5"), env={"TEXTUAL_ANIMATIONS": "none"})
    term.wait_for("SYSCALL", timeout=scaled(60))
    for key, tab in enumerate(TABS, start=1):
        term.keys(str(key))
        shown = term.wait_for(lambda s, tab=tab: all(c in s for c in KEY_COLUMNS[tab]) and "running on" in s,
                              timeout=scaled(60))
        assert all(len(line) <= size[0] for line in shown.splitlines()), shown
    term.keys("P")
    term.wait_for(lambda s: all(c in s for c in ("PROBE", "STATE", "EVENTS/s", "AVG ns", "CPU %", "SKIPPED")))
    term.keys("Escape")
    term.wait_for(lambda s: "SKIPPED" not in s)
    term.keys("q")
    assert wait_until_gone(before, timeout=20) == []
