"""The TCP collector's reading of the kernel's aggregates (tcp_counts) and
its event log (tcp_events.EventLog), fed the raw bytes the kernel's maps
and buffer hold (no BPF, no root)."""

import ipaddress

from test_tcp_text import raw

from bpftop.collectors import tcp_counts as tc
from bpftop.collectors import tcp_events as te
from bpftop.collectors.tcp_match import MatchFilter
from bpftop.model.disk import NSLOTS, slot_of_us

parse_key = tc.KeyParser()


def key(pid=100, comm=b"curl", daddr="10.0.0.2", dport=443, uid=1000, gen=1):
    packed = ipaddress.ip_address(daddr).packed
    family = te.AF_INET if len(packed) == 4 else te.AF_INET6
    return parse_key(tc.KEY.pack(pid, uid, gen, family, dport, packed + bytes(16 - len(packed)), comm))


def value(attempts, established=0, refused=0, failed=0, lat_us=(), sent=None, first=1, last=1):
    slots = [0] * NSLOTS
    for us in lat_us:
        slots[slot_of_us(us)] += 1
    sent = attempts if sent is None else sent
    lat_ns = int(sum(lat_us) * 1000)
    return tc.parse_value(tc.VALUE.pack(attempts, sent, established, refused, failed, len(lat_us), lat_ns,
                                        first, last, *slots))


def test_layouts_match_the_kernel_structs():
    # struct agg_key: 3 u32, 2 u16, 16 + 16 bytes; struct agg_val: 9 + NSLOTS u64.
    assert (tc.KEY.size, tc.VALUE.size) == (48, 8 * (9 + NSLOTS))
    k = key(pid=7, comm=b"wget\0\0", daddr="2001:db8::5", dport=80, uid=3, gen=9)
    assert (k.pid, k.uid, k.gen, k.family, k.daddr, k.dport, k.comm) == (7, 3, 9, 6, "2001:db8::5", 80, "wget")


def test_rows_totals_and_interval_differences():
    t = tc.CountTable()
    a = key()
    b = key(pid=200, comm=b"wget", daddr="2001:db8::5", dport=80)
    c = key(dport=9)
    first = t.update([(a, value(3, established=2, failed=1, lat_us=(100, 200, 300))),
                      (b, value(1, established=1, lat_us=(50,))),
                      (c, value(2, refused=2, lat_us=(10, 30), sent=1))], [])
    assert (first.connects, first.failures, first.total_connects, first.total_failures) == (6, 3, 6, 3)
    d = {(r.daddr, r.dport): r for r in first.destinations}
    assert (d["10.0.0.2", 443].count, d["10.0.0.2", 443].failures, d["10.0.0.2", 443].avg_latency_us) == (3, 1, 200.0)
    assert (d["10.0.0.2", 9].timed, d["10.0.0.2", 9].avg_latency_us) == (2, 20.0)
    procs = {p.pid: p for p in first.processes}
    assert (procs[100].count, procs[100].failures, procs[100].established, procs[100].timed) == (5, 3, 2, 5)
    assert [(f.family, f.count, f.failures) for f in first.families] == [(4, 5, 3), (6, 1, 0)]
    assert {(o.family, o.result, o.count) for o in first.outcome_counts} == {
        (4, "established", 2), (4, "failed", 1), (4, "refused", 2), (6, "established", 1)}
    assert sum(first.latency_hist) == 6 and first.latency_sum_ns == 690_000
    assert first.not_streamed == 1
    # The next read: only what is new since.
    second = t.update([(a, value(5, established=4, failed=1)), (b, value(1, established=1)),
                       (c, value(2, refused=2))], [])
    assert (second.connects, second.failures) == (2, 0)
    assert {(r.dport, r.new) for r in second.destinations} == {(443, 2), (80, 0), (9, 0)}


def test_the_python_filter_applies_per_key_and_the_spill_only_without_it():
    spill = [(4, value(4, established=3, refused=1, lat_us=(5, 5, 5, 5)))]
    entries = [(key(), value(2, established=2, lat_us=(1, 1))), (key(comm=b"wget"), value(1, refused=1))]
    plain = tc.CountTable().update(entries, spill)
    assert (plain.total_connects, plain.total_failures, plain.overflow, sum(plain.latency_hist)) == (7, 2, 4, 6)
    assert sum(d.count for d in plain.destinations) == 3  # the spill is in no row
    only_curl = tc.CountTable(MatchFilter(comm="^curl$")).update(entries, spill)
    assert (only_curl.total_connects, only_curl.total_failures, only_curl.overflow) == (2, 0, 4)
    assert [p.comm for p in only_curl.processes] == ["curl"] and sum(only_curl.latency_hist) == 2
    not_v4 = tc.CountTable(MatchFilter(addrs=("10.0.0.0/8",), addr_exclude=True)).update(entries, spill)
    assert not_v4.destinations == () and not_v4.total_connects == 0


def test_a_process_shows_its_latest_name_and_a_destination_its_first_pids():
    t = tc.CountTable()
    entries = [(key(pid=1, comm=b"sh"), value(1, first=10, last=10)),
               (key(pid=1, comm=b"curl"), value(2, first=20, last=30))]
    entries += [(key(pid=1000 + i, comm=b"w%d" % i), value(1, first=100 + i, last=100 + i)) for i in range(70)]
    totals = t.update(entries, [])
    (proc,) = [p for p in totals.processes if p.pid == 1]
    assert (proc.comm, proc.count) == ("curl", 3)
    (dest,) = totals.destinations
    assert dest.pids == (1,) + tuple(1000 + i for i in range(tc.MAX_DEST_PIDS - 1))
    assert dest.pids_dropped == 70 - (tc.MAX_DEST_PIDS - 1)
    assert "curl" in dest.comms and "sh" not in dest.comms


def test_a_reused_socket_address_joins_each_attempt_to_its_own_outcome():
    """The kernel reuses a freed socket's address at once. Two connects from
    one CPU, their outcomes handled on another: read CPU by CPU (perf
    buffers), both outcomes can come before both attempts, or after them
    (the 6.1 guest's perf-buffer rung: one attempt stayed "pending")."""
    attempts = [raw(te.EV_CONNECT, 7, ts=1_000_000_000), raw(te.EV_CONNECT, 7, ts=1_001_000_000)]
    outcomes = [raw(te.EV_ESTABLISHED, 7, sport=40000, ts=1_000_250_000, lat=250_000),
                raw(te.EV_ESTABLISHED, 7, sport=40001, ts=1_001_100_000, lat=100_000)]
    for order in (outcomes + attempts, attempts + outcomes):
        log = te.EventLog()
        for data in order:
            log.feed(data)
        events, _ = log.take()
        assert [(e.seq, e.result, e.sport, e.latency_us) for e in events] == [
            (2, "established", 40001, 100.0), (1, "established", 40000, 250.0)]


def test_the_event_log_joins_outcomes_and_filters_events():
    log = te.EventLog()
    log.feed(raw(te.EV_ESTABLISHED, 7, sport=40000, ts=1_000_250_000, lat=250_000))  # read before its attempt
    log.feed(raw(te.EV_CONNECT, 7, ts=1_000_000_000))
    log.feed(raw(te.EV_CONNECT, 8, dport=9))
    log.feed(raw(te.EV_REFUSED, 8, sport=40001, ts=1_000_050_000, lat=50_000))  # the attempt's time plus lat
    log.feed(raw(te.EV_CONNECT, 9, dport=22))
    events, streamed = log.take()
    assert streamed == 3
    assert [(e.seq, e.result, e.sport, e.latency_us) for e in events] == [
        (3, "pending", 0, None), (2, "refused", 40001, 50.0), (1, "established", 40000, 250.0)]
    log.reset(MatchFilter(comm="^wget$"))
    log.feed(raw(te.EV_CONNECT, 10))
    log.feed(raw(te.EV_CONNECT, 11, comm=b"wget"))
    events, streamed = log.take()
    assert streamed == 1 and [e.comm for e in events] == ["wget"]
