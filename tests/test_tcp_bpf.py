"""The TCP collector on real eBPF, checked against connects a child makes."""

import json
import os
import subprocess
import sys
import time

import connects
import pytest
from bpfprogs import ours, prog_ids, prog_list, start_once
from bpfprogs import wait_until_gone as _wait_until_gone
from rungs import rung_params
from shared import pid_filtered
from workload import Child

from bpftop.collectors.capabilities import EventFilter
from bpftop.collectors.tcp import EVENT_BURST, EVENT_RATE, TcpCollector
from bpftop.model import CollectorState, HookKind

# The kernel's names for this collector's programs (cut to 15 characters).
TCP_NAMES = ("tracepoint__soc", "tracepoint__tcp", "bpftop_tcp")


def tcp_progs(before=frozenset()):
    return {p["id"] for p in ours(prog_list(), before) if p.get("name", "").startswith(TCP_NAMES)}


def wait_until_gone(before, timeout=None):
    return sorted(p["id"] for p in _wait_until_gone(before, timeout) if p.get("name", "").startswith(TCP_NAMES))

pytestmark = pytest.mark.bpf

N4, N6, NK = 40, 30, 20  # IPv4 to a listener, IPv6 to ::1, to a closed port
BURST = 3000

class Connector(connects.Connector):
    def run(self, n4=N4, n6=N6, nk=NK):
        super().run(n4, n6, nk)


def start(**kw):
    c = TcpCollector(**kw)
    c.start()
    return c


@pytest.fixture
def collector(request):
    before = prog_ids()
    c = start(**getattr(request, "param", {}))
    yield c
    c.stop()
    assert wait_until_gone(before) == []


def dest_counts(snap):
    return {(d.daddr, d.dport): (d.count, d.failures, d.established) for d in snap.destinations}


def connect_window(collector):
    """The child's N4 + N6 + NK connects between two reads of a collector
    filtered to it; (child, snapshot)."""
    with Connector() as w:
        collector.set_kernel_filter("pid", [w.pid])
        collector.collect()
        w.run()
        snap = collector.collect()
        w.close()
    return w, snap


@pytest.mark.parametrize("collector", [{"buffer": "ring"}, {"buffer": "perf"}], indirect=True, ids=["ring", "perf"])
def test_exact_counts_for_the_child(collector):
    w, snap = connect_window(collector)
    assert collector.hook.endswith(collector.buffer + (" buffer"))
    assert snap.buffer == collector.buffer + " buffer"
    # Exactly what the child did, for that pid and those ports.
    assert dest_counts(snap) == {
        ("127.0.0.1", w.p4): (N4, 0, N4),
        ("::1", w.p6): (N6, 0, N6),
        ("127.0.0.1", w.closed): (NK, NK, 0),
    }
    assert [(p.pid, p.count, p.failures, p.established) for p in snap.processes] == [(w.pid, N4 + N6 + NK, NK, N4 + N6)]
    assert snap.processes[0].comm.startswith("python")
    assert {(f.family, f.count, f.failures) for f in snap.families} == {(4, N4 + NK, NK), (6, N6, 0)}
    assert (snap.total_connects, snap.total_failures) == (N4 + N6 + NK, NK)
    assert snap.lost_total == 0 and snap.orphan_results == 0
    # The event log: every attempt, with its addresses, ports and outcome.
    assert len(snap.events) == N4 + N6 + NK
    assert [e.seq for e in snap.events] == sorted((e.seq for e in snap.events), reverse=True)  # newest first
    by_port = {}
    for e in snap.events:
        assert e.pid == w.pid and e.comm.startswith("python") and e.sport > 0
        by_port.setdefault(e.dport, []).append(e)
        if e.dport == w.closed:
            assert (e.family, e.saddr, e.daddr, e.result) == (4, "127.0.0.1", "127.0.0.1", "refused")
        else:
            assert e.result == "established" and e.latency_us > 0
            assert (e.family, e.saddr, e.daddr) == ((4, "127.0.0.1", "127.0.0.1") if e.dport == w.p4 else (6, "::1", "::1"))
    assert {p: len(v) for p, v in by_port.items()} == {w.p4: N4, w.p6: N6, w.closed: NK}
    assert all(p.avg_latency_us > 0 for p in snap.processes)


def test_port_filters_in_the_kernel_change_without_recompiling(collector):
    with Connector() as w:
        progs = tcp_progs()
        assert progs
        collector.set_kernel_filter("pid", [w.pid])
        collector.set_kernel_filter("port", [w.p4, w.p6])
        collector.collect()
        w.run()
        snap = collector.collect()
        assert dest_counts(snap) == {("127.0.0.1", w.p4): (N4, 0, N4), ("::1", w.p6): (N6, 0, N6)}
        assert snap.port_filter == tuple(sorted((w.p4, w.p6)))

        collector.set_kernel_filter("port", [w.p4], exclude=True)
        w.run()
        snap = collector.collect()
        assert dest_counts(snap) == {("::1", w.p6): (N6, 0, N6), ("127.0.0.1", w.closed): (NK, NK, 0)}
        assert snap.port_exclude

        collector.set_kernel_filter("port", [])
        collector.set_kernel_filter("pid", [w.pid], exclude=True)
        w.run(5, 5, 5)
        snap = collector.collect()
        assert all(p.pid != w.pid for p in snap.processes)
        assert not {w.p4, w.p6, w.closed} & {d.dport for d in snap.destinations}
        # Same programs all along: filters are map updates.
        assert tcp_progs() == progs
        w.close()


def test_bad_filter_input_changes_nothing(collector):
    collector.set_kernel_filter("port", [80])
    for bad in ([0], [65536], ["80"], [True]):
        with pytest.raises(ValueError):
            collector.set_kernel_filter("port", bad)
    with pytest.raises(ValueError, match="bad comm regex"):
        collector.set_event_filter(EventFilter(comm="("))
    with pytest.raises(ValueError, match="not an IP address"):
        collector.set_event_filter(EventFilter(addrs=("10.0.0.300",)))
    assert collector.ports.ports == (80,)
    assert collector.collect().port_filter == (80,) and collector.match.text() == ""


def test_python_filters_on_comm_and_address(collector):
    with Connector() as w:
        collector.set_kernel_filter("pid", [w.pid])
        collector.set_event_filter(EventFilter(addrs=("::1",)))
        w.run()
        snap = collector.collect()
        assert dest_counts(snap) == {("::1", w.p6): (N6, 0, N6)}
        assert snap.match_filter == "addr=::1"

        collector.set_event_filter(EventFilter(addrs=("127.0.0.0/8",), addr_exclude=True))
        w.run()
        assert dest_counts(collector.collect()) == {("::1", w.p6): (N6, 0, N6)}

        collector.set_event_filter(EventFilter(comm="^nobody-is-called-this$"))
        w.run()
        snap = collector.collect()
        assert snap.destinations == () and snap.events == () and snap.orphan_results == 0

        collector.set_event_filter(EventFilter(comm="^pyth", addrs=("127.0.0.1",)))
        w.run()
        snap = collector.collect()
        assert dest_counts(snap) == {("127.0.0.1", w.p4): (N4, 0, N4), ("127.0.0.1", w.closed): (NK, NK, 0)}
        w.close()


# In the kernel matrix, every rung but kprobes with a ring buffer: a kernel
# without the tracepoint (before 4.16) has no ring buffer either (5.8), and
# the kprobe rungs' compile (net/sock.h) takes three minutes in a guest.
@pytest.mark.parametrize("rung", rung_params(
    TcpCollector, 4, in_matrix=lambda name: not ("kprobes" in name and "ring buffer" in name)))
def test_every_rung_counts_exactly(rung, shared_collectors):
    """Each rung this kernel offers sees exactly the child's connects. The
    kprobe rungs see the attempt as connect() returns, not its outcome.
    The session's collector on that rung (tests/shared.py); session end
    checks it leaves nothing loaded."""
    c = shared_collectors.get(TcpCollector, rung)
    s = TcpCollector().strategies()[rung]
    assert c.hook == s.name
    try:
        w, snap = connect_window(c)
    finally:
        c.set_kernel_filter("pid", [])
    assert {(d.daddr, d.dport): d.count for d in snap.destinations} == {
        ("127.0.0.1", w.p4): N4, ("::1", w.p6): N6, ("127.0.0.1", w.closed): NK,
    }
    assert [(p.pid, p.count) for p in snap.processes] == [(w.pid, N4 + N6 + NK)]
    assert {(f.family, f.count) for f in snap.families} == {(4, N4 + NK), (6, N6)}
    assert snap.total_connects == N4 + N6 + NK and snap.lost_total == 0
    assert len(snap.events) == N4 + N6 + NK
    for e in snap.events:
        assert e.pid == w.pid and e.comm.startswith("python") and e.sport > 0
        assert (e.family, e.saddr, e.daddr) == ((6, "::1", "::1") if e.dport == w.p6 else (4, "127.0.0.1", "127.0.0.1"))
    if s.kind is HookKind.TRACEPOINT:
        assert dest_counts(snap) == {
            ("127.0.0.1", w.p4): (N4, 0, N4),
            ("::1", w.p6): (N6, 0, N6),
            ("127.0.0.1", w.closed): (NK, NK, 0),
        }
        assert all(e.result == ("refused" if e.dport == w.closed else "established") for e in snap.events)


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_lost_events_are_counted_exactly(buffer):
    """A one-page buffer that nobody drains during a burst: most events of
    the log's sample are lost, and every one of them is counted; the counts
    come from the kernel's tables and miss nothing."""
    before = prog_ids()
    c = None
    try:
        with Connector() as w:
            # Filtered from the start: another process's events lost before
            # a filter change would surface in the perf buffer's lost
            # records during the burst.
            c = start(buffer=buffer, ring_pages=1, perf_pages=1, poll=False, max_events=BURST, pids=[w.pid])
            c.collect()
            w.run(BURST, 0, 0)
            snap = c.collect()
            if buffer == "perf":
                # The kernel writes a CPU's lost record before the next event
                # that fits in that CPU's buffer: a connect from every CPU
                # brings them all out, once the rate limit lets one more
                # event out on each CPU (a token every gap).
                time.sleep(2 * (os.cpu_count() or 1) / EVENT_RATE)
                assert w.ask("each-cpu") == "done 0\n"
                c.collect()
            w.close()
        assert snap.lost_connects > 0 and snap.streamed > 0
        # Every attempt: streamed, lost on the way, or held back by the
        # rate limit; every count exact however many events were lost.
        assert snap.streamed + snap.lost_connects + snap.not_streamed == BURST
        assert snap.total_connects == BURST and dest_counts(snap) == {("127.0.0.1", w.p4): (BURST, 0, BURST)}
        assert sum(snap.latency_hist) == BURST and snap.orphan_results == 0
        # An outcome is sent only when its attempt's event went out: each
        # of those is in the log joined to its attempt, or lost itself.
        joined = sum(1 for e in snap.events if e.result == "established")
        assert joined + snap.lost_results == snap.streamed
        assert snap.lost_new == snap.lost_total
        if buffer == "perf":
            # The perf buffer's own lost records agree with the kernel count.
            assert c.events.perf_lost == snap.lost_total
    finally:
        if c is not None:
            c.stop()
    assert wait_until_gone(before) == []


# Connects as fast as one process makes them for SECONDS, one in TEN to a
# closed port (refused), with SO_LINGER 0 so that no TIME_WAIT holds the
# ports; answers "done <established> <refused> <failed otherwise, to the
# listener> <failed otherwise, to the closed port>".
STORM = r"""
import errno, socket, sys, threading, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
c = socket.socket(); c.bind(("127.0.0.1", 0)); closed = c.getsockname()[1]; c.close()
def accept():
    while True:
        l.accept()[0].close()
threading.Thread(target=accept, daemon=True).start()
print(l.getsockname()[1], closed, flush=True)
secs, ten = float(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
ok = refused = failed = failed_closed = 0
linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
dst, end, i = ("127.0.0.1", l.getsockname()[1]), time.monotonic() + secs, 0
while time.monotonic() < end:
    for _ in range(64):
        i += 1
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        try:
            s.connect(("127.0.0.1", closed) if i % ten == 0 else dst)
            ok += 1
        except ConnectionRefusedError:
            refused += 1
        except OSError:
            if i % ten == 0:
                failed_closed += 1
            else:
                failed += 1
        s.close()
print("done", ok, refused, failed, failed_closed, flush=True)
sys.stdin.read()
"""


class Storm(Child):
    def __init__(self, seconds, ten=10):
        super().__init__(STORM, seconds, ten)
        self.port, self.closed = map(int, self.proc.stdout.readline().split())

    def run(self):
        done, *counts = self.ask("go").split()
        assert done == "done"
        return tuple(map(int, counts))


@pytest.mark.matrix
def test_a_connect_storm_is_counted_exactly(shared_collectors):
    """A child connecting as fast as it can for two seconds: every total,
    destination, outcome and latency count is what it made, and the event
    log's rate limit accounts for every attempt it did not send."""
    collector = shared_collectors.get(TcpCollector)
    with Storm(2.0) as w, pid_filtered(collector, [w.pid]):
        collector.collect()
        t0 = time.monotonic()
        ok, refused, failed, failed_closed = w.run()
        snap = collector.collect()
        elapsed = time.monotonic() - t0
        w.close()
    made = ok + refused + failed + failed_closed
    failures = refused + failed + failed_closed
    assert ok > 0 and refused > 0
    assert snap.total_connects == made and snap.total_failures == failures
    assert dest_counts(snap) == {
        ("127.0.0.1", w.port): (ok + failed, failed, ok),
        ("127.0.0.1", w.closed): (refused + failed_closed, refused + failed_closed, 0),
    }
    assert {(o.family, o.result, o.count) for o in snap.outcome_counts} == {
        (4, r, n) for r, n in (("established", ok), ("refused", refused), ("failed", failed + failed_closed)) if n
    }
    assert [(p.pid, p.count, p.established, p.failures) for p in snap.processes] == [(w.pid, made, ok, failures)]
    assert sum(snap.latency_hist) == made == sum(d.timed for d in snap.destinations)
    assert snap.latency_sum_ns > 0 and snap.orphan_results == 0 and snap.overflow_destinations == 0
    # The log is a sample: what was streamed and what the limit held back
    # are every attempt, and no more was streamed than the limit allows.
    assert snap.lost_total == 0
    assert snap.streamed + snap.not_streamed == made
    ncpu = os.cpu_count() or 1
    assert 0 < snap.streamed <= ncpu * EVENT_BURST + EVENT_RATE * (elapsed + 1)
    assert len(snap.events) == min(snap.streamed, collector.max_events)
    assert all(e.result in ("established", "refused", "failed") for e in snap.events)


# N short-lived children, each one connect to a listener and one to a
# closed port, reaped before the answer "done".
CHURN = r"""
import os, socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
c = socket.socket(); c.bind(("127.0.0.1", 0)); closed = c.getsockname()[1]; c.close()
print(l.getsockname()[1], closed, flush=True)
n = int(sys.stdin.readline())
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        s = socket.socket(); s.connect(l.getsockname()); s.close()
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", closed))
        except ConnectionRefusedError:
            pass
        os._exit(0)
    l.accept()[0].close()
    os.waitpid(pid, 0)
print("done", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("max_folded", [1000, 5])
def test_exited_processes_leave_the_kernel_table_and_stay_counted(max_folded):
    """Process churn: past ``fold_at`` keys, those of exited processes move
    from the kernel's table to the collector; their rows stay (up to
    ``max_folded`` keys, then in the totals only), every total exact."""
    n = 12
    before = prog_ids()
    c = None
    try:
        with Child(CHURN) as w:
            port, closed = map(int, w.proc.stdout.readline().split())
            c = start(ports=[port, closed], fold_at=4, max_folded=max_folded)
            c.collect()
            assert w.ask(str(n)) == "done\n"
            snap = c.collect()
            kernel_keys = len(list(c._bpf[b"agg"].keys()))
            again = c.collect()
            w.close()
    finally:
        if c is not None:
            c.stop()
    assert wait_until_gone(before) == []
    assert kernel_keys == 0  # every child has exited
    for s in (snap, again):
        assert (s.total_connects, s.total_failures) == (2 * n, n)
        assert {(o.result, o.count) for o in s.outcome_counts} == {("established", n), ("refused", n)}
        assert sum(s.latency_hist) == 2 * n
    assert (snap.connects, again.connects) == (2 * n, 0)
    if max_folded >= 2 * n:
        assert dest_counts(snap) == {("127.0.0.1", port): (n, 0, n), ("127.0.0.1", closed): (n, n, 0)}
        assert sorted(p.count for p in snap.processes) == [2] * n and snap.overflow_destinations == 0
    else:
        assert sum(d.count for d in snap.destinations) == max_folded
        assert snap.overflow_destinations == 2 * n - max_folded
    def procs(s):
        return sorted((p.pid, p.count, p.failures, p.established, p.timed) for p in s.processes)

    assert dest_counts(again) == dest_counts(snap) and procs(again) == procs(snap)
    assert all(p.new == 0 for p in again.processes) and all(d.new == 0 for d in again.destinations)


def test_kprobe_rungs_are_checked_and_say_why():
    c = TcpCollector()
    rungs = c.strategies()
    assert [r.kind for r in rungs] == [HookKind.TRACEPOINT] * 2 + [HookKind.KPROBE] * 2
    assert rungs[2].hooks == ("tcp_v4_connect", "tcp_v6_connect")
    from bpftop.bpf import system

    ok, _ = system.kprobes_available()
    if ok:
        pytest.skip("this kernel has kprobes: nothing to check about their absence")
    assert "kprobes" in rungs[2].check() and "kprobes" in rungs[3].check()


def test_stop_while_running_leaves_nothing_and_restarts(collector):
    assert collector.status.state is CollectorState.RUNNING
    collector.stop()
    assert not collector.events.running
    collector.start()
    with Connector() as w:
        collector.set_kernel_filter("pid", [w.pid])
        w.run(3, 2, 1)
        snap = collector.collect()
        w.close()
    assert snap.total_connects == 6 and snap.total_failures == 1


def test_once_json_cli_with_pid_filter():
    with Connector() as w:
        cli = start_once(["--json", "--tab", "tcp", "-d", "5", "-p", str(w.pid)])
        w.run()
        out, err = cli.communicate(timeout=60)
        w.close()
    assert cli.returncode == 0, err
    data = json.loads(out)
    assert data["tab"] == "tcp" and 4.5 < data["interval_s"] < 6
    rows = {(r["daddr"], r["dport"]): r for r in data["rows"]}
    assert {k: (r["count"], r["failures"]) for k, r in rows.items()} == {
        ("127.0.0.1", w.p4): (N4, 0), ("::1", w.p6): (N6, 0), ("127.0.0.1", w.closed): (NK, NK),
    }
    assert len(data["events"]) == N4 + N6 + NK
    ev = data["events"][0]
    assert set(ev) >= {"pid", "comm", "family", "saddr", "daddr", "dport", "sport", "latency_us", "result"}
    assert ev["pid"] == w.pid and ev["family"] == 4 and ev["dport"] == w.closed and ev["result"] == "refused"
    assert data["lost"] == {"connects": 0, "results": 0, "interval": 0}


def test_once_text_cli():
    res = subprocess.run([sys.executable, "-m", "bpftop", "--once", "--tab", "tcp", "-d", "0.3"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("bpftop tcp") and "hook: inet_sock_set_state tracepoint, ring buffer" in lines[0]
    assert any(ln.startswith("DESTINATION") for ln in lines) and any(ln.lstrip().startswith("PID") for ln in lines)
    assert any(ln.startswith("Latest connects") for ln in lines)


def test_doctor_lists_the_tcp_ladder(doctor_run):
    out = doctor_run.stdout
    section = out[out.index("\ntcp collector"):]
    assert "[chosen] inet_sock_set_state tracepoint, ring buffer" in section
    assert "[works ] inet_sock_set_state tracepoint, perf buffer" in section
    assert "tcp_v4/v6_connect kprobes, ring buffer" in section


@pytest.mark.matrix
def test_refused_only_destination_has_its_average_latency(shared_collectors):
    # The session's collector on the rung the ladder chooses.
    collector = shared_collectors.get(TcpCollector)
    with Connector() as w, pid_filtered(collector, [w.pid]):
        collector.collect()
        w.run(n4=0, n6=0, nk=NK)  # the child counts its own refusals
        snap = collector.collect()
        w.close()
    (dest,) = [d for d in snap.destinations if d.dport == w.closed]
    events = [e for e in snap.events if e.dport == w.closed]
    assert (dest.count, dest.failures, dest.established, len(events)) == (NK, NK, 0, NK)
    assert all(e.result == "refused" and e.latency_us > 0 for e in events)
    # Before: None although every event carried its time to the refusal.
    assert dest.timed == NK
    assert dest.avg_latency_us == pytest.approx(sum(e.latency_us for e in events) / NK, rel=1e-6)
    (proc,) = snap.processes
    assert proc.avg_latency_us == pytest.approx(dest.avg_latency_us, rel=1e-6)
