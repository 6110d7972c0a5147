"""The Processes collector on real eBPF, checked against a child that execs
short-lived programs with known argv, opens files (some fail), and sends
signals."""

import os
import stat
import tempfile

import pytest
import workload
from rungs import rung_params
from shared import pid_filtered

from bpftop.collectors.procs import ProcsCollector
from bpftop.collectors.procs_events import ARG_LEN, descendants
from bpftop.render import procs as render
from bpftop.tabs import TABS

pytestmark = pytest.mark.bpf

N, K, J, S = 6, 12, 4, 5  # execs, opens by the child (J fail ENOENT), signals
NOBODY = 65534
LONG = "L" * 100  # cut at ARG_LEN - 1 bytes in the kernel
ARGV = ("true", "two words", "ünïcödé ✓", "\x1b[2J", LONG)

# Prints "ready" once everything is imported (no open from an import
# lands in the window), then on "go": N fork+exec of /bin/true with ARGV
# plus "n=<i>", each waited for; K - 1 opens of which J name missing files;
# one fork that drops to nobody and opens a root-only file (EACCES, exit 3);
# S SIGUSR1 to itself (ignored). Answers "done" and waits for stdin to close.
CHILD = r"""
import os, signal, sys
n, k, j, s, nobody, tmp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
argv = sys.argv[7:]
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
secret = os.path.join(tmp, "secret")
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/true", argv + ["n=%d" % i])
    os.waitpid(pid, 0)
for i in range(k - 1):
    path = os.path.join(tmp, ("missing-%d" if i < j else "present-%d") % i)
    try:
        os.close(os.open(path, os.O_RDONLY if i < j else os.O_RDWR | os.O_CREAT, 0o644))
    except FileNotFoundError:
        pass
pid = os.fork()
if pid == 0:
    os.setgid(nobody); os.setuid(nobody)
    try:
        os.open(secret, os.O_RDONLY)
        os._exit(0)
    except PermissionError:
        os._exit(3)
_, status = os.waitpid(pid, 0)
me = os.getpid()
for _ in range(s):
    os.kill(me, signal.SIGUSR1)
sys.stdout.write("done %d %d\n" % (pid, os.waitstatus_to_exitcode(status))); sys.stdout.flush()
sys.stdin.read()
"""


class Worker(workload.Child):
    def __init__(self, tmp):
        super().__init__(CHILD, N, K, J, S, NOBODY, tmp, *ARGV)
        assert self.proc.stdout.readline() == "ready\n"

    def run(self):
        done, nobody_pid, code = self.ask("go").split()
        assert done == "done" and code == "3"  # the open as nobody failed with EACCES
        return int(nobody_pid)


@pytest.fixture
def tmp_files():
    with tempfile.TemporaryDirectory(prefix="bpftop-procs-") as tmp:
        os.chmod(tmp, 0o777)  # nobody may look in; the secret stays root's
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("root only\n")
        os.chmod(secret, stat.S_IRUSR | stat.S_IWUSR)
        yield tmp


def row_counts(snap, pid):
    for r in snap.processes:
        if r.pid == pid:
            return (r.execs, r.exits, r.forks, r.opens, r.open_fails, r.sig_sent, r.sig_recv)
    return (0,) * 7


def window(collector, tmp):
    """The child's work between two reads: (worker, nobody's pid, before, after)."""
    with Worker(tmp) as w:
        before = collector.collect()
        nobody_pid = w.run()
        after = collector.collect()
        w.close()
    return w, nobody_pid, before, after


def check_ground_truth(w, nobody_pid, before, snap, tmp):
    delta = tuple(a - b for a, b in zip(row_counts(snap, w.pid), row_counts(before, w.pid)))
    # execs, exits, forks, opens, failed opens, signals sent, received (S
    # SIGUSR1 and one SIGCHLD per child that exited).
    assert delta == (0, 0, N + 1, K - 1, J, S, S + N + 1)
    assert snap.lost_total == 0

    execs = [e for e in snap.execs if e.ppid == w.pid]
    assert len(execs) == N
    cut = ARGV[-1][: ARG_LEN - 1]
    assert sorted(e.argv for e in execs) == sorted(ARGV[:-1] + (cut, f"n={i}") for i in range(N))
    assert all(e.argv_cut == (len(ARGV) - 1,) and not e.argv_more for e in execs)
    assert all(e.filename == "/bin/true" and e.comm == "true" and e.uid == 0 for e in execs)
    exec_pids = {e.pid for e in execs}

    # Every grandchild exited within the window: all are short-lived.
    short = {e.pid: e for e in snap.short_lived if e.ppid == w.pid}
    assert set(short) == exec_pids | {nobody_pid}
    assert all(short[p].code == 0 and short[p].signal == 0 for p in exec_pids)
    assert short[nobody_pid].code == 3 and short[nobody_pid].uid == NOBODY
    assert all(0 < e.lifetime_s < snap.interval_s for e in short.values())
    for p in exec_pids:
        assert row_counts(snap, p)[:2] == (1, 1)  # one exec, one exit each
    assert row_counts(snap, nobody_pid) == (0, 1, 0, 1, 1, 1, 0)

    opens = [o for o in snap.opens if o.path.startswith(tmp)]
    mine = [o for o in opens if o.pid == w.pid]
    assert len(mine) == K - 1
    assert sorted(o.errno for o in mine) == [0] * (K - 1 - J) + [2] * J
    assert all(o.fd >= 0 for o in mine if o.errno == 0)
    (denied,) = [o for o in opens if o.pid == nobody_pid]
    assert (denied.errno, denied.uid, denied.path, denied.fd) == (13, NOBODY, os.path.join(tmp, "secret"), -1)

    sigs = [s for s in snap.signals if s.pid == w.pid and s.target == w.pid]
    assert len(sigs) == S and all(s.sig == 10 and s.result == "ignored" for s in sigs)

    tree = descendants(snap.processes, w.pid, [(e.pid, e.ppid) for e in snap.execs])
    assert set(tree) == {w.pid, nobody_pid} | exec_pids

    # The escape sequence reaches text output escaped, and JSON as JSON has it.
    text = TABS["procs"].to_text(snap)
    assert "\x1b" not in text
    assert "\\x1b[2J" in render.to_text(snap)
    data = TABS["procs"].to_dict(snap)
    json_execs = [e for e in data["exec_events"] if e["ppid"] == w.pid]
    assert all(e["argv"][3] == "\x1b[2J" and e["argv"][2] == "ünïcödé ✓" for e in json_execs)
    assert sorted(o["errno"] for o in data["open_events"] if o["pid"] == nobody_pid) == [13]


@pytest.mark.matrix
def test_exact_counts_for_the_child(shared_collectors, tmp_files):
    """The rung the ladder chooses (the one compile each matrix guest makes
    for this tab, shared by the tab's tests)."""
    c = shared_collectors.get(ProcsCollector)
    w, nobody_pid, before, snap = window(c, tmp_files)
    check_ground_truth(w, nobody_pid, before, snap, tmp_files)
    # A ring buffer's reader waits in poll(2) on libbpf's epoll fd, found
    # through this BCC (collectors/event_pump.py).
    assert c.events.gated == c.events.ring


@pytest.mark.parametrize("rung", rung_params(ProcsCollector, 2))
def test_every_rung_counts_exactly(rung, shared_collectors, tmp_files):
    c = shared_collectors.get(ProcsCollector, rung)
    assert c.hook == ProcsCollector().strategies()[rung].name
    w, nobody_pid, before, snap = window(c, tmp_files)
    check_ground_truth(w, nobody_pid, before, snap, tmp_files)
    assert c.events.gated == c.events.ring


@pytest.mark.matrix
def test_pid_and_uid_filters_in_the_kernel(shared_collectors, tmp_files):
    c = shared_collectors.get(ProcsCollector)
    with Worker(tmp_files) as w, pid_filtered(c, [w.pid]):
        nobody_pid = w.run()
        snap = c.collect()
        w.close()
    # Only the child acts under the filter; signals it receives count too.
    assert {r.pid for r in snap.processes} == {w.pid}
    assert row_counts(snap, w.pid) == (0, 0, N + 1, K - 1, J, S, S + N + 1)
    assert snap.execs == () and {o.pid for o in snap.opens} == {w.pid}
    assert snap.pid_filter == (w.pid,)

    try:
        c.set_kernel_filter("uid", [NOBODY])
        with Worker(tmp_files) as w:
            nobody_pid = w.run()
            snap = c.collect()
            w.close()
    finally:
        c.set_kernel_filter("uid", [])
    # What nobody's process did, and the SIGCHLD it sent shows at its
    # receiver. (Other tests on this machine may run processes as nobody.)
    assert row_counts(snap, nobody_pid) == (0, 1, 0, 1, 1, 1, 0)
    assert row_counts(snap, w.pid) == (0, 0, 0, 0, 0, 0, 1)
    others = [r for r in snap.processes if r.pid not in (nobody_pid, w.pid)]
    assert all(r.uid == NOBODY or row_counts(snap, r.pid)[:6] == (0,) * 6 for r in others)
    assert all(o.uid == NOBODY for o in snap.opens)
    assert [(o.pid, o.errno) for o in snap.opens if o.path.startswith(tmp_files)] == [(nobody_pid, 13)]
    assert snap.uid_filter == (NOBODY,)
    for bad in ([-1], ["0"], [True], [2**32]):
        with pytest.raises(ValueError):
            c.set_kernel_filter("uid", bad)
    assert c.collect().uid_filter == ()


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_losses_are_counted_exactly_per_kind(buffer):
    """A one-page buffer never drained during the work: the opens that did
    not fit are counted, and what arrived plus what was lost is all of them."""
    c = ProcsCollector(buffer=buffer, ring_pages=1, perf_pages=1, poll=False)
    c.start()
    assert c.hook.endswith(f"{buffer} buffer")
    n = 400
    # The opens come from a child that does nothing else: this process's
    # other threads (the tests' program sampler reads /proc) open files too.
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.read(go_r, 1)
            for _ in range(n):
                try:
                    os.open("/nonexistent-bpftop-procs", os.O_RDONLY)
                except FileNotFoundError:
                    pass
        finally:
            os._exit(0)
    try:
        c.set_kernel_filter("pid", [pid])
        c.collect()
        os.write(go_w, b"g")
        assert os.waitpid(pid, 0)[1] == 0
        snap = c.collect()
    finally:
        os.close(go_r)
        os.close(go_w)
        c.stop()
    lost = dict(snap.lost)
    seen = len([o for o in snap.opens if o.path == "/nonexistent-bpftop-procs"])
    assert lost["open"] > 0 and seen + lost["open"] == n
    assert row_counts(snap, pid)[3:5] == (n, n)  # the counts are in the kernel: all there
    assert "lost" in render.summary(snap) and str(lost["open"]) in render.summary(snap)


def test_doctor_lists_the_procs_ladder(doctor_run):
    out = doctor_run.stdout
    section = out[out.index("\nprocs collector"):]
    assert "[chosen] sched/syscalls/signal tracepoints, ring buffer" in section
    assert "[works ] sched/syscalls/signal tracepoints, perf buffer" in section
