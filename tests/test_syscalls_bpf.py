"""The syscalls collector on real eBPF, checked against syscalls we make."""

import json
import os
import subprocess
import sys
import time

import pytest
from bpfprogs import loaded_ids, start_once, wait_until_ids_gone, wait_until_loaded
from rungs import rung_params
from shared import pid_filtered
from testenv import TIME_SCALE, scaled
from workload import Workload

from bpftop.collectors.syscalls import SyscallsCollector
from bpftop.model import CollectorState

pytestmark = pytest.mark.bpf

N = 5000
K = 37


def rows_by_name(snapshots):
    total = {}
    for snap in snapshots:
        for r in snap.rows:
            t = total.setdefault(r.syscall, [0, 0, 0, 0])
            t[0] += r.count
            t[1] += r.errors
            t[2] += r.total_ns or 0
            t[3] += r.timed
    return total


def run_filtered(collector):
    with Workload(N, K) as w, pid_filtered(collector, [w.pid]):
        snaps = [collector.collect()]
        w.run()
        snaps.append(collector.collect())
        w.close()
        time.sleep(0.05)
        snaps.append(collector.collect())
    return w.pid, snaps


@pytest.fixture
def collector(request):
    c = SyscallsCollector(**getattr(request, "param", {}))
    c.start()
    ids = loaded_ids(c)
    yield c
    c.stop()
    assert wait_until_ids_gone(ids) == []


@pytest.fixture
def shared_collector(request, shared_collectors):
    """The session's collector on the rung the ladder chooses
    (tests/shared.py), with latency switched as asked (one program: latency
    is switched live by a flag in a map, not compiled in); run_filtered puts its
    filter back, and latency goes off again."""
    c = shared_collectors.get(SyscallsCollector)
    c.set_latency(request.param)
    yield c
    c.set_latency(False)


@pytest.mark.matrix
@pytest.mark.parametrize("shared_collector", [True, False], indirect=True, ids=["latency", "counts"])
def test_filtered_counts_are_exact(shared_collector):
    collector = shared_collector
    pid, snaps = run_filtered(collector)
    total = rows_by_name(snaps)
    # Exactly the calls the child made: the filter is applied in the kernel
    # and the counters are never reset, so nothing is lost between reads.
    assert total["getppid"][0] == N
    assert total["getppid"][1] == 0
    assert total["getsid"][:2] == [K, K]
    procs = {p.pid: p for s in snaps for p in s.processes}
    assert set(procs) == {pid}
    assert sum(p.count for s in snaps for p in s.processes if p.pid == pid) == sum(t[0] for t in total.values())
    if collector.latency:
        assert total["getppid"][3] == N and total["getppid"][2] > 0
    else:
        assert all(r.total_ns is None for s in snaps for r in s.rows)


def test_unfiltered_counts_at_least_n(collector):
    with Workload(N, K) as w:
        collector.collect()
        w.run()
        snap = collector.collect()
        w.close()
    total = rows_by_name([snap])
    assert total["getppid"][0] >= N
    assert total["getsid"][1] >= K
    mine = [p for p in snap.processes if p.pid == w.pid]
    assert mine and mine[0].count >= N + K and mine[0].comm.startswith("python")


def test_exclude_filter_leaves_the_process_out(collector):
    with Workload(N) as w:
        collector.set_kernel_filter("pid", [w.pid], exclude=True)
        collector.collect()
        w.run()
        snap = collector.collect()
        w.close()
    assert all(p.pid != w.pid for p in snap.processes)
    assert rows_by_name([snap]).get("getppid", [0])[0] < N


@pytest.mark.matrix
@pytest.mark.parametrize("rung", rung_params(SyscallsCollector, 2))
def test_every_rung_counts_exactly(rung, shared_collectors):
    # The session's collector on this rung; session end checks it leaves
    # nothing loaded.
    c = shared_collectors.get(SyscallsCollector, rung)
    s = SyscallsCollector().strategies()[rung]
    assert c.hook == s.name
    assert c.status.state is CollectorState.RUNNING
    assert wait_until_loaded(shared_collectors.before_of(c), timeout=1) and loaded_ids(c)
    c.set_latency(True)
    try:
        _, snaps = run_filtered(c)
    finally:
        c.set_latency(False)
    total = rows_by_name(snaps)
    assert total["getppid"][0] == N and total["getsid"][:2] == [K, K]
    assert total["getppid"][3] == N


def _helper_calls(fd: int) -> str:
    from bpftop.bpf import objinfo

    prog_id = objinfo.prog_info(fd).id
    return subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog_id)], capture_output=True,
                          text=True, check=True).stdout


def test_btf_rung_reads_the_syscall_number_without_a_helper(shared_collectors):
    """What makes the BTF rung cheaper than the plain raw tracepoints (the
    bench measures by how much): the same exit program, loaded as a tracing
    program typed by sys_exit, reads pt_regs with a plain load the verifier
    checked, where the plain rung calls bpf_probe_read_kernel."""
    from bpftop.bpf import objinfo

    btf = shared_collectors.get(SyscallsCollector, "BTF raw tracepoints")
    plain = shared_collectors.get(SyscallsCollector, "raw tracepoints")
    btf_fd, plain_fd = (c._bpf.funcs[b"bpftop_sc_exit"].fd for c in (btf, plain))
    assert objinfo.prog_info(btf_fd).type == "tracing"
    assert objinfo.prog_info(plain_fd).type == "raw_tracepoint"
    assert "bpf_probe_read_kernel" in _helper_calls(plain_fd)
    assert "call" in _helper_calls(btf_fd) and "bpf_probe_read_kernel" not in _helper_calls(btf_fd)


@pytest.mark.parametrize("latency", [[], ["--latency"]], ids=["default", "latency"])
def test_once_json_cli_with_pid_filter(latency):
    with Workload(N, K) as w:
        cli = start_once(["--json", "-d", "5", "-p", str(w.pid), *latency])
        w.run()
        out, err = cli.communicate(timeout=60)
        w.close()
    assert cli.returncode == 0, err
    data = json.loads(out)
    assert data["tab"] == "syscalls" and 4.5 < data["interval_s"] < 6
    rows = {r["syscall"]: r for r in data["rows"]}
    assert rows["getppid"]["count"] == N
    assert rows["getsid"]["errors"] == K
    assert set(rows["getppid"]) >= {"syscall", "count", "errors", "total_ns", "avg_ns"}
    # Latency is off by default: its fields are there, and null.
    assert data["latency"] is bool(latency)
    if latency:
        assert rows["getppid"]["total_ns"] > 0 and rows["getppid"]["avg_ns"] > 0
    else:
        assert all(r["total_ns"] is None and r["avg_ns"] is None for r in data["rows"])
    assert [p["pid"] for p in data["processes"]] == [w.pid]
    assert set(data["processes"][0]) >= {"pid", "comm", "count"}


def test_once_text_cli():
    res = subprocess.run([sys.executable, "-m", "bpftop", "--once", "-d", "0.5"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("bpftop syscalls") and "hook: BTF raw tracepoints" in lines[0]
    assert any(ln.startswith("SYSCALL") for ln in lines) and any(ln.lstrip().startswith("PID") for ln in lines)


def test_doctor_reports_hooks_and_facts(doctor_run):
    assert doctor_run.returncode == 0, doctor_run.stdout + doctor_run.stderr
    out = doctor_run.stdout
    for fact in ("kernel", "headers", "lockdown", "tracefs", "kprobes", "object cache"):
        assert f"\n{fact}" in out
    assert "[chosen] BTF raw tracepoints" in out
    assert "raw_syscalls tracepoints" in out
    # Doctor compiles every hook even where the cache has it, and says so.
    cache = os.environ["BPFTOP_OBJECT_CACHE"]
    assert f"\nobject cache  {cache}\n" in out
    assert f"compiled-object cache ({os.path.realpath(cache)}): every hook above was compiled" in out


def test_per_process_counts_stay_exact_under_concurrent_reads(collector):
    """Three processes on two CPUs switch back and forth while the maps are
    read every few milliseconds; per-process totals must add up exactly to
    the per-syscall totals (each CPU's pending count moves into the hash as
    processes switch, and the reader must neither lose nor double it)."""
    import threading

    workers = [Workload(N * 40) for _ in range(3)]
    try:
        collector.set_kernel_filter("pid", [w.pid for w in workers])
        snaps = [collector.collect()]
        threads = [threading.Thread(target=w.run) for w in workers]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            snaps.append(collector.collect())
            time.sleep(0.003)
        for w in workers:
            w.close()
        snaps.append(collector.collect())
    finally:
        for w in workers:
            w.__exit__(None, None, None)
    assert len(snaps) > 10
    by_call = sum(r.count for s in snaps for r in s.rows)
    by_proc = sum(p.count for s in snaps for p in s.processes)
    assert by_proc == by_call
    assert all(p.count > 0 for s in snaps for p in s.processes)
    assert rows_by_name(snaps)["getppid"][0] == 3 * N * 40
    per_pid = {}
    for s in snaps:
        for p in s.processes:
            per_pid[p.pid] = per_pid.get(p.pid, 0) + p.count
    assert set(per_pid) == {w.pid for w in workers}
    assert all(n >= N * 40 for n in per_pid.values())
    assert sum(s.untracked_calls for s in snaps) == 0


def test_tracefs_is_mounted_when_absent():
    from bpftop.bpf import system

    if os.path.isdir("/sys/kernel/debug/tracing/events"):
        pytest.skip("tracefs is reachable through debugfs here; nothing to mount")
    if os.path.ismount(system.TRACEFS):
        subprocess.run(["umount", system.TRACEFS], check=True)
    try:
        system._tracefs = None
        res = subprocess.run([sys.executable, "-m", "bpftop", "doctor"], capture_output=True, text=True, timeout=120)
        assert "tracefs       /sys/kernel/tracing  (was not mounted: mounted by bpftop)" in res.stdout, res.stdout
        assert res.returncode == 0
    finally:
        if not os.path.ismount(system.TRACEFS):
            subprocess.run(["mount", "-t", "tracefs", "tracefs", system.TRACEFS])


# Starts threads on cue and reports how many clone-family calls it made:
# each thread is one pthread_create, which is one clone3 (or clone, where
# the C library falls back to it), as strace -f counts them.
THREADS_CHILD = r"""
import sys, threading
n = int(sys.argv[1])
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
for _ in range(n):
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
sys.stdout.write(f"{n}\n"); sys.stdout.flush()
sys.stdin.read()
"""


# In the kernel matrix on the rung its kernels choose and on the classic
# tracepoints, whose records carry the number themselves.
@pytest.mark.parametrize("rung", [pytest.param("BTF raw tracepoints", id="btf", marks=pytest.mark.matrix),
                                  pytest.param("raw tracepoints", id="raw"),
                                  pytest.param("raw_syscalls tracepoints", id="tp", marks=pytest.mark.matrix)])
def test_clone_counts_once_per_new_thread_as_strace(rung, shared_collectors):
    from workload import Child

    # The session's collector on that rung; session end checks it leaves
    # nothing loaded.
    c = shared_collectors.get(SyscallsCollector, rung)
    with Child(THREADS_CHILD, 200) as child:
        assert child.proc.stdout.readline() == "ready\n"
        with pid_filtered(c, [child.pid]):
            snaps = [c.collect()]
            made = int(child.ask("go"))
            snaps.append(c.collect())
        child.close()
    total = rows_by_name(snaps)
    clones = sum(total.get(name, [0])[0] for name in ("clone", "clone3"))
    # Before: 400 (the caller's return and each new thread's own).
    assert clones == made == 200
    assert sum(total.get(name, [0, 0])[1] for name in ("clone", "clone3")) == 0


BUSY_CHILD = "import os\nwhile True:\n    os.getppid()\n"


@pytest.mark.matrix
def test_a_new_filter_shows_nothing_other_processes_did_before_it(shared_collectors):
    # Busy processes on every CPU pass the old (empty) filter all the time:
    # what they did before the filter changed, or while still inside a probe
    # when it changed, must not land in the new filter's interval. (On a
    # fast host the second window is nanoseconds; in an emulated guest a
    # vCPU can stall inside it.)
    collector = shared_collectors.get(SyscallsCollector)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_CHILD]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        with Workload(N, K) as w:
            strays = []
            for _ in range(int(300 / TIME_SCALE) + 20):
                with pid_filtered(collector, [w.pid]):
                    strays += [p.pid for p in collector.collect().processes if p.pid != w.pid]
            w.close()
        assert strays == []
    finally:
        for b in busy:
            b.kill()
            b.wait()


def test_doctor_quick_stops_at_each_chosen_rung():
    import re

    res = subprocess.run([sys.executable, "-m", "bpftop", "doctor", "--quick"], capture_output=True, text=True,
                         timeout=scaled(300))
    assert res.returncode == 0, res.stdout + res.stderr
    sections = re.split(r"\n\n(?=[a-z]+ collector)", res.stdout)[1:]
    assert len(sections) >= 4 and all("(rungs tried until one loads, then released)" in s for s in sections)
    for section in sections:
        marks = re.findall(r"^  \[(.{6})\]", section, re.M)
        chosen = marks.index("chosen")
        assert set(marks[:chosen]) <= {"fails "} and set(marks[chosen + 1:]) <= {"  --  "}, section
    assert "not tried: a higher rung loaded" in res.stdout
