"""Latency as a probe of its own, on real eBPF: switched live on a running
syscalls collector, it loads nothing new, leaves nothing behind, never
stops the counting, and times exactly the calls made while it is on."""

import os

import pytest
from bpfprogs import held_bpf_objects, links_of, loaded_ids, map_list, prog_list
from rungs import rung_params
from testenv import scaled
from workload import Child

from bpftop.collectors import syscall_names
from bpftop.collectors.syscalls import SyscallsCollector

pytestmark = pytest.mark.bpf

SWITCHES = 100
PER_PHASE = 50

# Makes getppid calls on cue ("n K"), or blocks in one readv on the pipe
# it was handed until the test writes a byte ("block"). readv: the child's
# own command reads use read, so readv is the test's alone.
CHILD = r"""
import os, sys
fd = int(sys.argv[1])
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "n":
        for _ in range(int(arg)):
            os.getppid()
    elif cmd == "block":
        sys.stdout.write("blocking\n"); sys.stdout.flush()
        os.readv(fd, [bytearray(1)])
    sys.stdout.write("done\n"); sys.stdout.flush()
"""


class Caller(Child):
    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_inheritable(self.r, True)
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(self.r)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, pass_fds=(self.r,))
        assert self.proc.stdout.readline() == "ready\n"

    def calls(self, n):
        assert self.ask(f"n {n}") == "done\n"

    def start_blocking(self):
        """Returns once the child sits inside readv (its start is past)."""
        assert self.ask("block") == "blocking\n"
        nr = syscall_names.number("readv")
        for _ in range(int(scaled(10) / 0.01)):
            with open(f"/proc/{self.pid}/syscall") as f:
                if f.read().split()[0] == str(nr):
                    return
            import time

            time.sleep(0.01)
        raise AssertionError("the child never blocked in readv")

    def release(self):
        os.write(self.w, b"x")
        assert self.proc.stdout.readline() == "done\n"

    def __exit__(self, *exc):
        super().__exit__(*exc)
        os.close(self.r)
        os.close(self.w)


def totals(snaps, name):
    count = timed = 0
    for s in snaps:
        for r in s.rows:
            if r.syscall == name:
                count += r.count
                timed += r.timed
    return count, timed


@pytest.fixture
def syscalls(shared_collectors):
    """The session's default syscalls collector (latency off): switched
    here, and off again for the next test."""
    c = shared_collectors.get(SyscallsCollector)
    assert not c.latency
    yield c
    c.set_latency(False)
    c.set_kernel_filter("pid", [])


def our_maps():
    return {m["id"] for m in map_list()} & held_bpf_objects()["map"]


@pytest.mark.matrix
def test_hundred_switches_keep_counts_exact_and_leave_nothing_behind(syscalls):
    check_switches(syscalls, SWITCHES)


@pytest.mark.matrix
def test_a_call_that_started_before_the_switch_on_is_not_timed(syscalls):
    check_stale_starts(syscalls)


# Threads that move themselves between the CPUs (sched_setaffinity: the
# call migrates its caller, so its exit runs on another CPU than its
# entry), sleep (clock_nanosleep: the thread leaves the CPU inside the
# call) and make plain calls, each timing its own calls from user space.
MOVER = r"""
import json, os, sys, threading, time
threads, rounds = int(sys.argv[1]), int(sys.argv[2])
cpus = sorted(os.sched_getaffinity(0))
spent = {"sched_setaffinity": 0, "clock_nanosleep": 0}
lock = threading.Lock()
def work(i):
    mine = {"sched_setaffinity": 0, "clock_nanosleep": 0}
    for r in range(rounds):
        t = time.monotonic_ns()
        os.sched_setaffinity(0, {cpus[(i + r) % len(cpus)]})
        mine["sched_setaffinity"] += time.monotonic_ns() - t
        t = time.monotonic_ns()
        time.sleep(0.001)
        mine["clock_nanosleep"] += time.monotonic_ns() - t
        for _ in range(10):
            os.getppid()
    with lock:
        for k, v in mine.items():
            spent[k] += v
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
sys.stdout.write(json.dumps(spent) + "\n"); sys.stdout.flush()
sys.stdin.read()
"""


@pytest.mark.matrix
def test_calls_that_move_cpu_or_sleep_are_timed_exactly(syscalls):
    """A start is kept in a per-CPU slot while its thread stays on the CPU,
    and moved into the hash when the thread leaves it inside the call: every
    call is timed once, whichever CPU it ends on, and never for longer than
    the caller itself saw it take (a start left from another call would)."""
    import json

    threads, rounds = 4, 100
    with Child(MOVER, threads, rounds) as child:
        assert child.proc.stdout.readline() == "ready\n"
        syscalls.set_kernel_filter("pid", [child.pid])
        syscalls.set_latency(True)
        syscalls.collect()
        spent = json.loads(child.ask("go"))
        snap = syscalls.collect()
        syscalls.set_latency(False)
    n = threads * rounds
    rows = {r.syscall: r for r in snap.rows}
    for name, calls in (("sched_setaffinity", n), ("clock_nanosleep", n), ("getppid", 10 * n)):
        assert (rows[name].count, rows[name].timed) == (calls, calls), name
    for name in ("sched_setaffinity", "clock_nanosleep"):
        assert rows[name].total_ns <= spent[name], (name, rows[name].total_ns, spent[name])
    assert rows["clock_nanosleep"].total_ns >= n * 1_000_000


def check_switches(c, switches):
    with Caller() as child:
        c.set_kernel_filter("pid", [child.pid])
        # The first switch-on attaches sys_enter and sched_switch (if no
        # earlier test did): from then on, switches attach nothing.
        c.set_latency(True)
        c.set_latency(False)
        assert c.latency_attached
        progs_before = loaded_ids(c)
        held_before = held_bpf_objects()
        maps_before = our_maps()
        assert progs_before and maps_before
        snaps = [c.collect()]
        timed_expected = 0
        for i in range(switches):
            on = i % 2 == 0
            c.set_latency(on)
            child.calls(PER_PHASE)
            timed_expected += PER_PHASE if on else 0
            if i % 10 == 9:
                snaps.append(c.collect())
        c.set_latency(False)
        snaps.append(c.collect())
        # Every call counted once, whatever the switches did meanwhile; and
        # exactly those made while latency was on were timed.
        assert totals(snaps, "getppid") == (switches * PER_PHASE, timed_expected)
        assert all(s.latency for s in snaps[1:-1])  # each of those intervals had latency on for a while
        # Nothing new in the kernel: the same programs (latency's stay
        # attached from its first switch-on; a flag in a map switches
        # them), the same maps, no link or tracepoint attachment left from the
        # switching.
        assert loaded_ids(c) == progs_before
        held_after = held_bpf_objects()
        assert held_after == held_before
        assert our_maps() == maps_before
        assert {p["id"] for p in prog_list()} >= progs_before
        assert links_of(progs_before) == [link for link in links_of(progs_before)
                                          if link["id"] in held_before["link"]]


def check_stale_starts(c):
    with Caller() as child:
        c.set_kernel_filter("pid", [child.pid])
        c.collect()
        # Started while off, ended while on.
        child.start_blocking()
        c.set_latency(True)
        child.release()
        # Started while on, then off and on again: its start is from an
        # earlier switch-on.
        child.start_blocking()
        c.set_latency(False)
        c.set_latency(True)
        child.release()
        assert totals([c.collect()], "readv") == (2, 0)
        # And one wholly inside a switch-on is timed, for at least the time
        # it was blocked (the test would fail if nothing were ever timed).
        child.start_blocking()
        import time

        time.sleep(0.05)
        child.release()
        snap = c.collect()
        c.set_latency(False)
    assert totals([snap], "readv") == (1, 1)
    row = next(r for r in snap.rows if r.syscall == "readv")
    assert row.total_ns >= 50_000_000 and snap.latency


@pytest.mark.matrix
@pytest.mark.parametrize("rung", rung_params(SyscallsCollector, 2))
def test_switching_on_every_rung(rung, shared_collectors):
    """On each rung (a raw tracepoint link, or a perf event for the
    classic tracepoint), switched on, it times; off, it does not; the first
    switch-on attaches sys_enter and sched_switch, once, and no later switch
    attaches or detaches anything (attaching and detaching sys_enter at each
    switch took Debian's 6.12 down). The session's collectors of test_syscalls_bpf's
    every-rung test: no compile of its own."""
    c = shared_collectors.get(SyscallsCollector, rung)
    with Caller() as child:
        c.set_kernel_filter("pid", [child.pid])
        try:
            attached = c.latency_attached
            held = held_bpf_objects()
            c.collect()
            c.set_latency(True)
            assert c.latency_attached
            if not attached:
                after = held_bpf_objects()
                grew = (len(after["link"]) - len(held["link"]), after["perf_events"] - held["perf_events"])
                # sys_enter and sched_switch: two links (raw tracepoints) or two perf events
                assert grew in ((2, 0), (0, 2)), grew
                held = after
            else:
                assert held_bpf_objects() == held
            child.calls(1000)
            on = c.collect()
            c.set_latency(False)
            assert held_bpf_objects() == held
            # The interval it was switched off in had latency for a while:
            # the next one has none.
            assert c.collect().latency
            child.calls(1000)
            off = c.collect()
        finally:
            c.set_latency(False)
            c.set_kernel_filter("pid", [])
    assert totals([on], "getppid") == (1000, 1000) and on.latency
    assert totals([off], "getppid") == (1000, 0) and not off.latency
    assert all(r.total_ns is None for r in off.rows)
