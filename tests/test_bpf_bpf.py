"""The BPF tab on the real kernel: a child process loads a known program
(tests/bpf_tab_child.py: a raw tracepoint on task_rename and a hash map
with a known number of entries) and renames itself exactly N times; the
tab must show N more runs, the child as owner, the tracepoint as attach
point, the map with its entries, and the program gone once the child is.
Statistics must be left as found however bpftop ends."""

import json
import os
import select
import signal
import subprocess
import sys
import time
import warnings

import pytest
from testenv import scaled

from bpftop.bpf import system
from bpftop.collectors.bpf import STATS_FD, BpfCollector
from bpftop.model import CollectorState, HookKind
from bpftop.render.bpf import summary

pytestmark = pytest.mark.bpf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
N = 37
TRIES = 20
SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def stats_sysctl():
    with open(SYSCTL) as f:
        return f.read().strip()


class Child:
    def __init__(self):
        system.ensure_tracefs()
        sys.path.insert(0, HERE)
        from bpf_tab_child import COMM, ENTRIES

        self.comm, self.entries = COMM.decode(), ENTRIES
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "bpf_tab_child.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # One BCC compile: a second here, up to a minute in an emulated guest.
        if not select.select([self.proc.stdout], [], [], scaled(120))[0]:
            self.proc.kill()
            raise AssertionError("the child did not load its program in time")
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.proc.kill()
            raise AssertionError(f"the child did not load its program: {line}")
        self.prog_id, self.map_id = int(line[1]), int(line[2])

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def total(self):
        return int(self.ask("total"))

    def rename(self, n):
        assert self.ask(f"rename {n}") == "done"

    def quit(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=scaled(10))


@pytest.fixture(scope="module")
def child():
    c = Child()
    try:
        yield c
    finally:
        c.quit()


def stats_holders():
    """Processes holding a BPF_ENABLE_STATS fd (statistics are on while they do)."""
    out = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        if _holds_stats_fd(pid):
            out.append(pid)
    return out


def counting(child):
    """Whether the kernel counts runs now (the ground truth of "stats on"):
    the child's program's run_cnt, read through bpf(2), moves when the
    child renames itself."""
    from bpftop.bpf import objinfo

    def run_cnt():
        fd = objinfo.fd_by_id(objinfo.BPF_PROG_GET_FD_BY_ID, child.prog_id)
        try:
            return objinfo.prog_info(fd).run_cnt
        finally:
            os.close(fd)

    before = run_cnt()
    child.rename(3)
    return run_cnt() != before


def stats_as_found(child):
    """What "as found" means for a test of a way out: (sysctl, whether the
    kernel counts runs). When something else keeps statistics on, the check
    after exit is only that they are still on, and a warning says so."""
    found = (stats_sysctl(), counting(child))
    if found[1]:
        warnings.warn("BPF statistics were on before the test (sysctl or another tool's fd): "
                      "switching them back off cannot be seen here", stacklevel=2)
    return found


def row_of(snap, prog_id):
    found = [r for r in snap.rows if r.id == prog_id]
    return found[0] if found else None


@pytest.mark.matrix
def test_runs_owner_attach_and_map_of_a_known_program(child):
    """One collector with --bpf-stats: the run count goes up by exactly N.
    task_rename also fires for any exec on the machine, so a try counts only
    when the program's own count (read before and after) went up by exactly
    N: then nothing else ran it in the interval either."""
    before = stats_sysctl()
    c = BpfCollector(enable_stats=True)
    status = c.start()
    try:
        assert status.state is CollectorState.RUNNING
        assert status.chosen.kind is HookKind.SYSCALL
        assert _holds_stats_fd(os.getpid()) and counting(child)
        for _ in range(TRIES):
            t0 = child.total()
            c.collect()
            child.rename(N)
            snap = c.collect()
            t1 = child.total()
            if t1 - t0 == N:
                break
        else:
            pytest.fail(f"in {TRIES} tries other tasks always renamed themselves during the interval")
        assert snap.stats_on and snap.stats_how == STATS_FD
        row = row_of(snap, child.prog_id)
        assert row is not None, [r.id for r in snap.rows]
        assert row.runs == N
        assert row.run_ns is not None and row.run_ns > 0
        assert row.avg_ns == pytest.approx(row.run_ns / N)
        assert row.type == "raw_tracepoint"
        assert "raw_tracepoint task_rename" in row.attach
        assert [(o.pid, o.comm) for o in row.owners] == [(child.proc.pid, child.comm)]
        assert not row.ours
        assert child.map_id in row.map_ids
        m = snap.map(child.map_id)
        assert (m.type, m.name, m.entries, m.entries_complete) == ("hash", "marks", child.entries, True)
        assert m.memlock and m.memlock > 0
        assert snap.programs_total >= 1 and snap.cpu_pct_total is not None
    finally:
        c.stop()
    assert stats_sysctl() == before
    if before == "0" and not stats_holders():
        assert not counting(child)


def test_map_ids_past_the_room_of_the_first_info_call(child, monkeypatch):
    """A program with more maps than the first info call has room for: the
    second call reads them all (the child's program uses two)."""
    from bpftop.bpf import objinfo

    fd = objinfo.fd_by_id(objinfo.BPF_PROG_GET_FD_BY_ID, child.prog_id)
    try:
        roomy = objinfo.prog_info(fd).map_ids
        monkeypatch.setattr(objinfo, "MAP_ROOM", 1)
        tight = objinfo.prog_info(fd).map_ids
    finally:
        os.close(fd)
    assert len(roomy) == 2 and child.map_id in roomy
    assert tight == roomy


def test_json_once_and_program_leaves_with_its_process():
    child = Child()
    try:
        res = subprocess.run([sys.executable, "-m", "bpftop", "--once", "--tab", "bpf", "-d", "0.3", "--json"],
                             capture_output=True, text=True, cwd=ROOT, timeout=scaled(60))
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["tab"] == "bpf" and out["interval_s"] > 0
        rows = [r for r in out["rows"] if r["id"] == child.prog_id]
        assert len(rows) == 1
        row = rows[0]
        assert {"id", "type", "name", "attach", "runs", "run_ns", "owners"} <= set(row)
        assert row["owners"] == [{"pid": child.proc.pid, "comm": child.comm, "source": "fdinfo"}]
        assert "raw_tracepoint task_rename" in row["attach"]
        if out["totals"]["stats"] == "off":
            assert row["runs"] is None and row["run_ns"] is None
        assert {"programs", "cpu_pct", "map_bytes", "stats", "stats_how"} <= set(out["totals"])
        text = subprocess.run([sys.executable, "-m", "bpftop", "--once", "--tab", "bpf", "-d", "0.2",
                               "-p", str(child.proc.pid)], capture_output=True, text=True, cwd=ROOT,
                              timeout=scaled(60))
        assert text.returncode == 0, text.stderr
        lines = [ln for ln in text.stdout.splitlines() if ln.split()[:1] == [str(child.prog_id)]]
        assert len(lines) == 1 and child.comm in lines[0] and "task_rename" in lines[0], text.stdout
        c = BpfCollector()
        c.start()
        try:
            assert row_of(c.collect(), child.prog_id) is not None
            child.quit()
            deadline = time.monotonic() + scaled(10)
            while row_of(c.collect(), child.prog_id) is not None:
                assert time.monotonic() < deadline, "the program stayed listed after its process exited"
                time.sleep(0.2)
        finally:
            c.stop()
    finally:
        child.quit()


def test_stats_off_reads_stats_off_not_zero(child):
    if stats_sysctl() != "0" or stats_holders():
        pytest.skip("BPF statistics are on (another tool holds them): cannot see them off")
    c = BpfCollector()
    c.start()
    try:
        c.collect()
        child.rename(3)
        snap = c.collect()
    finally:
        c.stop()
    if snap.stats_on:
        pytest.skip("another tool switched BPF statistics on meanwhile")
    row = row_of(snap, child.prog_id)
    assert row.cost is None and row.runs is None and snap.cpu_pct_total is None
    from bpftop.render.bpf import to_text

    line = next(ln for ln in to_text(snap).splitlines() if ln.split()[:1] == [str(child.prog_id)])
    assert line.split().count("off") == 4  # RUNS, AVG_NS, EVENTS/S, CPU%: "off", never 0


def _holds_stats_fd(pid):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-stats":
                    return True
            except OSError:
                continue
    except OSError:
        pass
    return False


def _wait_stats_fd(proc):
    deadline = time.monotonic() + scaled(30)
    while not _holds_stats_fd(proc.pid):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "bpftop never switched statistics on"
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_once_killed_leaves_stats_as_found(child, sig, code):
    found = stats_as_found(child)
    proc = subprocess.Popen([sys.executable, "-m", "bpftop", "--once", "--tab", "bpf", "--bpf-stats", "-d", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        _wait_stats_fd(proc)
        assert counting(child)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=scaled(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code
    assert "Traceback" not in err
    assert (stats_sysctl(), counting(child)) == found


def test_console_q_leaves_stats_as_found(child, need_tmux, tmp_path):
    found = stats_as_found(child)
    server = ["tmux", "-L", f"bpftop-bpftab-{os.getpid()}"]
    pidfile, status = tmp_path / "pid", tmp_path / "status"
    inner = (f"echo $$ > {pidfile}; exec {sys.executable} -m bpftop -d 0.5 --tab bpf --probes bpf --bpf-stats")
    cmd = f"cd {ROOT} && sh -c '{inner}'; echo $? > {status}; sleep 60"
    subprocess.run([*server, "new-session", "-d", "-s", "t", "-x", "120", "-y", "30", "sh", "-c", cmd], check=True)
    try:
        deadline = time.monotonic() + scaled(30)
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pid = int(pidfile.read_text())

        def screen():
            return subprocess.run([*server, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True).stdout

        while not ("stats on (bpftop --bpf-stats" in screen() and _holds_stats_fd(pid)):
            assert time.monotonic() < deadline, screen()
            time.sleep(0.1)
        assert counting(child)
        subprocess.run([*server, "send-keys", "-t", "t", "q"], check=True)
        while not (status.exists() and status.read_text().strip()):
            assert time.monotonic() < deadline + scaled(15), screen()
            time.sleep(0.1)
        assert int(status.read_text()) == 0
        assert "Traceback" not in screen()
    finally:
        subprocess.run([*server, "kill-server"], capture_output=True)
    assert (stats_sysctl(), counting(child)) == found


def test_own_programs_are_marked_and_agree_with_the_probes_screen(shared_collectors):
    """bpftop's own programs (a syscalls collector of this process) are
    marked ours, and their counts are the ones the probes screen reads
    from the program fds' fdinfo: between a reading before and one after."""
    from bpfprogs import loaded_ids

    from bpftop.bpf.stats import program_stats
    from bpftop.collectors.syscalls import SyscallsCollector

    sc = shared_collectors.get(SyscallsCollector)
    ids = loaded_ids(sc)
    assert ids
    c = BpfCollector(enable_stats=True)
    c.start()
    try:
        c.collect()
        for _ in range(1000):
            os.getppid()
        before = {s.prog_id: s for s in (program_stats(fd) for _, fd in sc.programs()) if s}
        snap = c.collect()
        after = {s.prog_id: s for s in (program_stats(fd) for _, fd in sc.programs()) if s}
    finally:
        c.stop()
    rows = {r.id: r for r in snap.rows if r.id in ids}
    assert set(rows) == ids
    for prog_id, row in rows.items():
        assert row.ours and any(o.pid == os.getpid() for o in row.owners)
        if after[prog_id].run_cnt == 0:
            # Loaded, not attached: the syscalls tab's latency program while latency is off.
            assert not row.runs and not row.total_runs
            continue
        assert before[prog_id].run_cnt <= row.total_runs <= after[prog_id].run_cnt
        assert before[prog_id].run_time_ns <= row.total_run_ns <= after[prog_id].run_time_ns
        assert row.runs >= 1000  # every syscall runs each of them: at least the getppid calls
    # Other collectors this test session shares are ours too.
    assert f"* = bpftop's own ({sum(1 for r in snap.rows if r.ours)})" in summary(snap)
    assert sum(1 for r in snap.rows if r.ours) >= len(ids)


def test_entry_counts_batched_and_key_by_key_agree(child, tmp_path):
    from bpftop.bpf import mapcount, objinfo

    fd = objinfo.fd_by_id(objinfo.BPF_MAP_GET_FD_BY_ID, child.map_id, objinfo.BPF_F_RDONLY)
    try:
        info = objinfo.map_info(fd)
        assert info.type in mapcount.BATCH_MAPS
        assert mapcount.count_entries(fd, info, 1000) == (child.entries, True)
        assert mapcount.count_keys(fd, info.key_size, 1000) == (child.entries, True)
        # At the limit the count stops and says it is not complete.
        assert mapcount.count_keys(fd, info.key_size, 2) == (2, False)
    finally:
        os.close(fd)
    possible = tmp_path / "possible"
    possible.write_text("0-3,8-11,16\n")
    assert mapcount.possible_cpus(str(possible)) == 9


def test_a_pinned_program_shows_its_path_and_outlives_its_process(tmp_path):
    """Pinned in a bpffs, a program's holder is the path: listed while its
    loader runs, and after it exits (no process holds it then), until the
    pin is removed."""
    from bpftop.render.bpf import detail_lines, to_dict

    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    child = Child()
    pin = bpffs / "bpftop test pin"
    try:
        subprocess.run(["bpftool", "prog", "pin", "id", str(child.prog_id), str(pin)], check=True)
        c = BpfCollector()
        c.start()
        try:
            row = row_of(c.collect(), child.prog_id)
            assert row.pinned == (str(pin),) and [o.pid for o in row.owners] == [child.proc.pid]
            child.quit()
            deadline = time.monotonic() + scaled(10)
            while True:
                snap = c.collect()
                row = row_of(snap, child.prog_id)
                assert row is not None, "a pinned program left the list with its loader"
                if not row.owners:
                    break
                assert time.monotonic() < deadline, "the exited loader stayed an owner"
                time.sleep(0.2)
            assert row.pinned == (str(pin),)
            assert f"pinned: {pin}" in detail_lines(snap, row)
            (json_row,) = [r for r in to_dict(snap)["rows"] if r["id"] == child.prog_id]
            assert json_row["pinned"] == [str(pin)] and json_row["owners"] == []
            pin.unlink()
            deadline = time.monotonic() + scaled(10)
            while row_of(c.collect(), child.prog_id) is not None:
                assert time.monotonic() < deadline, "the program stayed after its pin was removed"
                time.sleep(0.2)
        finally:
            c.stop()
    finally:
        child.quit()
        subprocess.run(["umount", str(bpffs)], check=False)


def fdinfo_counters(fd):
    fields = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return (int(fields["prog_id"]), int(fields.get("run_cnt", 0)), int(fields.get("run_time_ns", 0)),
            int(fields["recursion_misses"]) if "recursion_misses" in fields else None)


def test_program_counters_from_the_info_agree_with_the_fdinfo(shared_collectors):
    """program_stats reads a program's counters from its info (one bpf(2)
    call); the kernel's fdinfo of the same fd, read just before and just
    after, brackets them."""
    from bpftop.bpf.stats import StatsSwitch, program_stats
    from bpftop.collectors.syscalls import SyscallsCollector

    sc = shared_collectors.get(SyscallsCollector)
    switch = StatsSwitch()
    assert switch.open()
    try:
        for _ in range(2000):
            os.getppid()
        for name, fd in sc.programs():
            before = fdinfo_counters(fd)
            got = program_stats(fd)
            after = fdinfo_counters(fd)
            assert got is not None, name
            assert got.prog_id == before[0] == after[0]
            assert before[1] <= got.run_cnt <= after[1], name
            assert before[2] <= got.run_time_ns <= after[2], name
            assert (got.recursion_misses is None) == (before[3] is None), name
        assert any(program_stats(fd).run_cnt for _, fd in sc.programs())  # statistics were on: it counted
    finally:
        switch.close()


def test_a_raw_tracepoint_link_is_read_once_and_dropped_when_it_goes():
    """A raw tracepoint link's program and target never change: the BPF
    tab reads its info once, names it every interval, and forgets it with
    the link."""
    import bcc

    from bpftop.bpf import objinfo
    from bpftop.collectors.bpf import read_links

    b = bcc.BPF(text=b"RAW_TRACEPOINT_PROBE(sched_process_free) { return 0; }")
    try:
        known = {}
        prog_id = objinfo.prog_info(b.funcs[b"raw_tracepoint__sched_process_free"].fd).id
        first = read_links(known)
        assert first.get(prog_id) == {"raw_tracepoint sched_process_free"}
        cached = [i for i, link in known.items() if link.prog_id == prog_id]
        assert len(cached) == 1
        opened = []
        real = objinfo.fd_by_id

        def counting(cmd, obj_id, *a):
            opened.append((cmd, obj_id))
            return real(cmd, obj_id, *a)

        objinfo.fd_by_id = counting
        try:
            again = read_links(known)
        finally:
            objinfo.fd_by_id = real
        assert again.get(prog_id) == {"raw_tracepoint sched_process_free"}
        assert (objinfo.BPF_LINK_GET_FD_BY_ID, cached[0]) not in opened  # named from what was kept
    finally:
        b.cleanup()
    after = read_links(known)
    assert prog_id not in after and cached[0] not in known
