"""Test helpers about the kernel's BPF programs (via bpftool) and privileges."""

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time

from testenv import ONCE_SLOWER, scaled

# Names bpftop's programs carry in the kernel (raw tracepoint rung; the
# classic tracepoints get BCC's generated name, tracepoint__<category>,
# cut to 15 characters by the kernel).
OUR_NAMES = ("bpftop_", "tracepoint__")


def bpf_skip_reason():
    if os.geteuid() != 0:
        return "needs root to load eBPF programs (run: sudo make test)"
    if not shutil.which("bpftool"):
        return "bpftool is not installed (make test installs it)"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "BCC's Python module (python3-bpfcc) is not importable"
    return None


def prog_list():
    # Untagged: bpftool holds an fd of every program while it lists them,
    # which would make every program on the machine look like this run's.
    env = {k: v for k, v in os.environ.items() if k != TAG}
    out = subprocess.run(["bpftool", "prog", "list", "-j"], capture_output=True, text=True, check=True,
                         env=env).stdout
    return json.loads(out or "[]")


# Which programs are this test run's. Names alone are not enough: another
# test run on the same machine (another checkout, CI beside a developer)
# loads programs with the same names, and its bpftop comes and goes at any
# time. This bpftool reports no holder pids (that needs its BPF-iterator
# build), so the run tags itself: every process it starts inherits TAG (the
# console over SSH gets it on its command line), and a sampler thread
# records the id of every program a tagged process holds open, read from
# /proc/PID/fdinfo. A program counts as ours if a tagged process held it.
TAG = "BPFTOP_TEST_RUN"
os.environ.setdefault(TAG, f"{os.getpid()}-{time.time_ns()}")
_MARK = f"{TAG}={os.environ[TAG]}".encode()
_BPF_FDS = ("anon_inode:bpf-prog", "anon_inode:bpf_link")
# A program no process holds any more is freed by the kernel, which can take
# about a second after its last holder exits; one unheld for longer is
# pinned or held where fdinfo does not show it (an attached perf event).
UNHELD_GRACE = 3.0


def tag_env():
    """``NAME=VALUE`` that marks a process (and its programs) as this run's."""
    return f"{TAG}={os.environ[TAG]}"


def held_prog_ids(pid):
    """Ids of the BPF programs process ``pid`` holds by a program or link fd."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return ids
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") not in _BPF_FDS:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue  # closed meanwhile
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        if int(fields.get("flags", "0").strip() or "0", 8) & os.O_NONBLOCK:
            # The BPF tab reading a program's info by id (it marks those
            # fds), not a process holding it: else every program on the
            # machine would look like this run's.
            continue
        if "prog_id" in fields:
            ids.add(int(fields["prog_id"].split()[0]))
    return ids


def _pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


class _Sampler:
    """Every tenth of a second, the programs held by this run's processes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = set()
        self._tagged = {}  # pid -> ((executable, stack), whether its environment carries our tag)
        self._thread = None
        self.quiet = threading.Event()  # set: no samples (see quiet_sampler)

    def _is_tagged(self, pid):
        if pid == os.getpid():
            # This process set the tag after it started: its /proc environ,
            # fixed at exec, does not show it. Its collectors are ours.
            return True
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/stat") as f:
                # startstack: a new stack at every exec (placed at random), so
                # an exec of the same binary is told apart too. A child seen
                # between fork and exec (pytest's environment, untagged) would
                # otherwise stay untagged after it execs bpftop with the tag.
                image = (exe, f.read().rsplit(")", 1)[1].split()[25])
        except (OSError, IndexError):
            return False  # a kernel thread, or gone
        # The environment is fixed at exec, so the answer holds until the
        # process execs again (the SSH session's shell execs bpftop).
        known = self._tagged.get(pid)
        if known is None or known[0] != image:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                return False
            known = self._tagged[pid] = (image, _MARK in env.split(b"\0"))
        return known[1]

    def sample(self):
        pids = _pids()
        with self.lock:
            alive = set(pids)
            for pid in list(self._tagged):
                if pid not in alive:
                    del self._tagged[pid]
            for pid in pids:
                if self._is_tagged(pid):
                    self.seen |= held_prog_ids(pid)
            return set(self.seen)

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bpf-sampler", daemon=True)
            self._thread.start()

    def _run(self):
        while True:
            if not self.quiet.is_set():
                self.sample()
            time.sleep(0.1)


_sampler = _Sampler()


@contextlib.contextmanager
def quiet_sampler():
    """No sampling meanwhile: each sample opens a few files of every
    process (500 opens a second), which a console's Processes tab would be
    busy reading while a test measures the console itself. Load or unload
    no program meanwhile."""
    _sampler.sample()
    _sampler.quiet.set()
    try:
        yield
    finally:
        _sampler.quiet.clear()
        _sampler.sample()


def prog_ids():
    """Ids loaded now (the ``before`` of a test); starts recording which
    programs this run's processes hold."""
    _sampler.start()
    return {p["id"] for p in prog_list()}


def ours(progs, before=frozenset()):
    """Programs of this run, loaded since ``before``."""
    seen = _sampler.sample()
    return [p for p in progs if p["id"] not in before and p["id"] in seen]


def _unheld(progs, before, seen):
    """Programs with our names, loaded since ``before``, that no live process
    holds and no process of ours was seen holding."""
    candidates = {p["id"]: p for p in progs if p["id"] not in before and p["id"] not in seen
                  and p.get("name", "").startswith(OUR_NAMES)}
    if candidates:
        for pid in _pids():
            for prog_id in held_prog_ids(pid) & candidates.keys():
                del candidates[prog_id]
    return candidates


def wait_until_gone(before, timeout=None):
    """Programs of ours loaded since ``before`` that are still there after
    ``timeout`` (the kernel frees them a moment after their last fd closes),
    and any with our names that nobody holds for longer than that moment
    (pinned, or held out of sight): those are nobody's but ours to leave."""
    deadline = time.monotonic() + (timeout if timeout is not None else scaled(5.0))
    unheld_since = {}
    while True:
        progs = prog_list()
        left = ours(progs, before)
        now = time.monotonic()
        unheld = _unheld(progs, before, _sampler.sample())
        unheld_since = {i: unheld_since.get(i, now) for i in unheld}
        stale = [unheld[i] for i, t in unheld_since.items() if now - t >= UNHELD_GRACE]
        pending = any(now - t < UNHELD_GRACE for t in unheld_since.values())
        if (not left and not stale and not pending) or (now > deadline and not pending):
            # Say why each counts, for the failure message.
            return ([dict(p, why="a process of this run held it") for p in left]
                    + [dict(p, why=f"nobody has held it for {UNHELD_GRACE:g} s") for p in stale])
        time.sleep(0.2)


def wait_until_loaded(before, timeout=None):
    deadline = time.monotonic() + (timeout if timeout is not None else scaled(30.0))
    while time.monotonic() < deadline:
        found = ours(prog_list(), before)
        if found:
            return found
        time.sleep(0.2)
    return []


def holds_programs(pid):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-prog":
                return True
        except OSError:
            continue
    return False


def wait_until_holding_programs(proc, timeout=None):
    deadline = time.monotonic() + (timeout if timeout is not None else scaled(30.0))
    while time.monotonic() < deadline and proc.poll() is None:
        if holds_programs(proc.pid):
            return True
        time.sleep(0.05)
    return False


def start_once(args, timeout=None):
    """``bpftop --once ARGS`` started, and returned once its programs are in
    the kernel: work done after this falls inside its interval."""
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bpftop", "--once", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Its own programs, by the file descriptors it holds: other engineers'
    # bpftop programs, with the same names, come and go meanwhile.
    if not wait_until_holding_programs(proc, timeout if timeout is not None else scaled(30.0)):
        proc.kill()
        raise AssertionError(f"bpftop {' '.join(args)} never loaded its programs: {proc.communicate()[1]}")
    # Attached by now; the collector reads its baseline right after, which
    # can lag on a loaded machine (or an emulated guest: ONCE_SLOWER).
    time.sleep(ONCE_SLOWER)
    return proc


def assert_signal_exit(proc, sig, code, before, timeout=None):
    """Send ``sig`` to a running bpftop: it must exit with ``code``, print no
    traceback, and leave none of the programs it loaded behind."""
    try:
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=timeout if timeout is not None else scaled(30))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert "Traceback" not in err
    left = wait_until_gone(before)
    assert left == [], left


def loaded_ids(collector):
    """Kernel ids of the programs a collector of this process holds."""
    from bpftop.bpf.stats import program_stats

    ids = set()
    for _, fd in collector.programs():
        stats = program_stats(fd)
        if stats is not None:
            ids.add(stats.prog_id)
    return ids


def wait_until_ids_gone(ids, timeout=None):
    """Those of ``ids`` still loaded after ``timeout``: unlike matching by
    name, other engineers' programs loaded meanwhile do not count. The
    kernel frees a closed program after an RCU grace period, which takes
    long in a busy emulated guest: the default wait scales."""
    deadline = time.monotonic() + (timeout if timeout is not None else scaled(5.0))
    while True:
        left = [p for p in prog_list() if p["id"] in ids]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def held_bpf_objects(pid="self"):
    """The kernel ids of the BPF programs, maps and links process ``pid``
    holds, and how many perf-event fds it has (a classic tracepoint's
    attachment): ``{"prog": set, "map": set, "link": set, "perf_events": int}``."""
    out = {"prog": set(), "map": set(), "link": set(), "perf_events": 0}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target == "anon_inode:[perf_event]":
                out["perf_events"] += 1
                continue
            if not target.startswith("anon_inode:bpf"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue  # closed meanwhile
        for kind in ("link", "map", "prog"):
            value = info.get(f"{kind}_id", "").strip()
            if value.isdigit():
                out[kind].add(int(value))
                break
    return out


def links_of(prog_ids):
    """bpftool's links (raw tracepoint attachments) of these programs."""
    env = {k: v for k, v in os.environ.items() if k != TAG}
    res = subprocess.run(["bpftool", "link", "list", "-j"], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return []
    return [link for link in json.loads(res.stdout or "[]") if link.get("prog_id") in prog_ids]


def map_list():
    env = {k: v for k, v in os.environ.items() if k != TAG}
    out = subprocess.run(["bpftool", "map", "list", "-j"], capture_output=True, text=True, check=True,
                         env=env).stdout
    return json.loads(out or "[]")
