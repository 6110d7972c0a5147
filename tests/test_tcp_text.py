"""The TCP event aggregator, filters and renderers, fed synthetic kernel
events (no BPF, no root)."""

import ipaddress
import json

import pytest
from tcp_aggregator import MAX_DEST_PIDS, Aggregator

from bpftop.collectors import tcp_events as te
from bpftop.collectors.tcp import TcpCollector
from bpftop.model.tcp import TcpSnapshot
from bpftop.render import tcp as render


def raw(kind, sk, pid=100, comm=b"curl", family=te.AF_INET, saddr="10.0.0.1", daddr="10.0.0.2",
        sport=0, dport=443, ts=1_000_000_000, lat=0, uid=1000):
    def packed(a):
        b = ipaddress.ip_address(a).packed
        return b + bytes(16 - len(b))
    return te.EVENT.pack(ts, sk, lat, pid, uid, kind, family, sport, dport, packed(saddr), packed(daddr), comm)


def snapshot(agg, interval=2.0, **kw):
    t = agg.take(interval)
    base = dict(
        interval_s=interval, taken_at=0.0, hook="inet_sock_set_state tracepoint, ring buffer", since=t.since,
        destinations=t.destinations, processes=t.processes, events=t.events, connects=t.connects,
        failures=t.failures, total_connects=t.total_connects, total_failures=t.total_failures,
        families=t.families, rate_history=t.rate_history, lost_connects=0, lost_results=0, lost_new=0,
        orphan_results=t.orphan_results, overflow_destinations=t.overflow_destinations,
    )
    base.update(kw)
    return TcpSnapshot(**base)


def feed_scenario(agg):
    agg.feed(raw(te.EV_CONNECT, 1))
    agg.feed(raw(te.EV_CONNECT, 2, pid=200, comm=b"wget", family=te.AF_INET6, saddr="::1", daddr="2001:db8:0:0::5", dport=80))
    agg.feed(raw(te.EV_CONNECT, 3, dport=9))
    agg.feed(raw(te.EV_ESTABLISHED, 1, sport=40000, lat=250_000))
    agg.feed(raw(te.EV_REFUSED, 3, sport=40001, lat=50_000))
    agg.feed(raw(te.EV_FAILED, 99))  # its attempt was never seen


def test_attempts_join_their_outcomes():
    agg = Aggregator()
    feed_scenario(agg)
    snap = snapshot(agg)
    d = {(r.daddr, r.dport): r for r in snap.destinations}
    assert set(d) == {("10.0.0.2", 443), ("10.0.0.2", 9), ("2001:db8::5", 80)}  # IPv6 compressed
    assert (d["10.0.0.2", 443].count, d["10.0.0.2", 443].established, d["10.0.0.2", 443].avg_latency_us) == (1, 1, 250.0)
    assert (d["10.0.0.2", 9].timed, d["10.0.0.2", 9].avg_latency_us) == (1, 50.0)
    assert (d["10.0.0.2", 9].failures, d["2001:db8::5", 80].failures) == (1, 0)
    procs = {p.pid: p for p in snap.processes}
    assert (procs[100].count, procs[100].failures, procs[100].comm, procs[100].uid) == (2, 1, "curl", 1000)
    assert (procs[200].count, procs[200].comm) == (1, "wget")
    assert [e.seq for e in snap.events] == [3, 2, 1]
    ev = {e.seq: e for e in snap.events}
    assert (ev[1].result, ev[1].sport, ev[1].latency_us) == ("established", 40000, 250.0)
    assert (ev[2].result, ev[2].family, ev[2].saddr, ev[2].sport) == ("pending", 6, "::1", 0)
    assert ev[3].result == "refused"
    assert (snap.connects, snap.failures, snap.orphan_results) == (3, 1, 1)
    assert [(f.family, f.count, f.failures) for f in snap.families] == [(4, 2, 1), (6, 1, 0)]


def test_a_settled_attempt_is_frozen_once_and_a_pending_one_follows_its_outcome():
    log = te.EventLog()
    log.feed(raw(te.EV_CONNECT, 1))
    log.feed(raw(te.EV_CONNECT, 2, dport=9))
    # As the kernel sends them: an outcome's time less its latency is its attempt's.
    log.feed(raw(te.EV_ESTABLISHED, 1, sport=40000, ts=1_000_250_000, lat=250_000))
    (pending, settled), _ = log.take()
    assert (pending.result, settled.result) == ("pending", "established")
    log.feed(raw(te.EV_REFUSED, 2, sport=40001, ts=1_000_050_000, lat=50_000))
    (refused, again), streamed = log.take()
    assert again is settled and streamed == 2
    assert (refused.seq, refused.result, refused.sport, refused.latency_us) == (2, "refused", 40001, 50.0)
    assert log.take()[0][0] is refused


def test_an_outcome_read_before_its_attempt_joins_it():
    """Per-CPU perf buffers are read one after the other: the outcome, handled
    on another CPU, can come first (CI saw an attempt stay "pending")."""
    agg = Aggregator()
    agg.feed(raw(te.EV_ESTABLISHED, 7, sport=40000, ts=1_000_250_000, lat=250_000))
    agg.feed(raw(te.EV_REFUSED, 8, sport=40001, ts=1_000_900_000, lat=50_000))  # an older socket's
    agg.feed(raw(te.EV_CONNECT, 7, ts=1_000_000_000))
    agg.feed(raw(te.EV_CONNECT, 8, ts=1_000_000_000))  # not the attempt that refusal belongs to
    snap = snapshot(agg)
    ev = {e.seq: e for e in snap.events}
    assert (ev[1].result, ev[1].sport, ev[1].latency_us) == ("established", 40000, 250.0)
    assert ev[2].result == "pending"
    assert (snap.connects, snap.failures, snap.orphan_results) == (2, 0, 1)
    assert snap.destinations[0].established == 1


def test_interval_counts_restart_but_totals_do_not():
    agg = Aggregator()
    feed_scenario(agg)
    snapshot(agg)
    agg.feed(raw(te.EV_FAILED, 2, pid=200, family=te.AF_INET6, saddr="::1", daddr="2001:db8::5", dport=80, lat=3_000_000_000))
    agg.feed(raw(te.EV_CONNECT, 4))
    snap = snapshot(agg, interval=0.5)
    d = {(r.daddr, r.dport): r for r in snap.destinations}
    assert (d["10.0.0.2", 443].count, d["10.0.0.2", 443].new) == (2, 1)
    assert (d["2001:db8::5", 80].new, d["2001:db8::5", 80].failures) == (0, 1)
    assert (snap.connects, snap.failures, snap.total_connects, snap.total_failures) == (1, 1, 4, 2)
    assert snap.rate_history == (1.5, 2.0)


def test_event_log_is_bounded_and_aggregates_stay_exact():
    agg = Aggregator(max_events=10, max_destinations=5)
    for i in range(1000):
        agg.feed(raw(te.EV_CONNECT, i, dport=1 + i % 7))
    snap = snapshot(agg)
    assert len(snap.events) == 10 and snap.events[0].seq == 1000
    assert snap.total_connects == 1000
    assert sum(d.count for d in snap.destinations) + snap.overflow_destinations == 1000
    assert len(snap.destinations) == 5


def test_match_filter_counts_only_what_matches_and_drops_its_outcomes_quietly():
    agg = Aggregator()
    agg.set_match(te.MatchFilter(comm="^wg"))
    feed_scenario(agg)
    snap = snapshot(agg)
    assert [p.comm for p in snap.processes] == ["wget"]
    assert snap.orphan_results == 1  # only the one that never had an attempt
    agg.set_match(te.MatchFilter(addrs=["10.0.0.0/24"], addr_exclude=True))
    feed_scenario(agg)
    assert [d.daddr for d in snapshot(agg).destinations] == ["2001:db8::5"]
    assert te.MatchFilter(comm="x", comm_exclude=True, addrs=["::1", "10.0.0.0/8"]).text() == "comm!~x addr=::1 addr=10.0.0.0/8"


def test_connect_failed_at_once_is_attempt_and_outcome():
    agg = Aggregator(outcomes=False)
    agg.feed(raw(te.EV_CONNECT, 1))
    agg.feed(raw(te.EV_CONNECT_FAILED, 2))
    snap = snapshot(agg, outcomes=False)
    assert (snap.total_connects, snap.total_failures) == (2, 1)
    assert [e.result for e in snap.events] == ["failed", "-"]
    assert "attempts only" in render.summary(snap)


@pytest.mark.parametrize("kw, words", [
    (dict(comm="("), "bad comm regex"),
    (dict(addrs=["999.1.1.1"]), "not an IP address"),
    (dict(addrs=[5]), "must be text"),
])
def test_match_filter_rejects_bad_input(kw, words):
    with pytest.raises(ValueError, match=words):
        te.MatchFilter(**kw)


def test_collector_rejects_bad_options_without_loading():
    for kw, words in (
        (dict(buffer="pipe"), "buffer must be"),
        (dict(ring_pages=3), "power of two"),
        (dict(ports=[0]), "out of range"),
        (dict(ports=["https"]), "must be an integer"),
        (dict(pids=[-1]), "out of range"),
    ):
        with pytest.raises(ValueError, match=words):
            TcpCollector(**kw)
    c = TcpCollector(ports=[443])
    with pytest.raises(ValueError):
        c.set_kernel_filter("port", [1, 2, 70000])
    assert c.ports.ports == (443,)
    assert [s.name for s in TcpCollector(buffer="perf").strategies()] == [
        "inet_sock_set_state tracepoint, perf buffer", "tcp_v4/v6_connect kprobes, perf buffer"]


def test_text_output_has_header_tables_and_latest_events():
    agg = Aggregator()
    feed_scenario(agg)
    snap = snapshot(agg, pid_filter=(100,), port_filter=(443, 9), lost_connects=3, lost_results=1, lost_new=4)
    text = render.to_text(snap)
    lines = text.splitlines()
    assert lines[0].startswith("bpftop tcp") and "filter: pid=100 port=443 port=9" in lines[0]
    assert lines[1].startswith("3 connects (1.5/s)  1 failed  total 3 (1 failed)  IPv4 2/1 failed  IPv6 1/0 failed")
    assert "lost 4 events (+4)" in lines[1] and "1 outcomes without their attempt" in lines[1]
    dest = next(ln for ln in lines if ln.startswith("10.0.0.2:443"))
    assert dest.split() == ["10.0.0.2:443", "1", "1", "0", "0.250", "curl"]
    assert any(ln.startswith("[2001:db8::5]:80") for ln in lines)
    body = text[text.index("Latest connects"):]
    assert body.index("10.0.0.2:9 ") < body.index("[2001:db8::5]:80") < body.index("10.0.0.2:443")
    assert "10.0.0.1:40001" in body and "refused" in body
    assert "\x1b" not in text


def test_json_fields_of_the_contract():
    agg = Aggregator()
    feed_scenario(agg)
    d = render.to_dict(snapshot(agg))
    json.dumps(d)
    assert d["tab"] == "tcp" and d["interval_s"] == 2.0
    row = next(r for r in d["rows"] if r["dport"] == 443)
    assert row["daddr"] == "10.0.0.2" and row["count"] == 1 and row["avg_latency_us"] == 250.0
    assert {"pid": 100, "comm": "curl"}.items() <= d["processes"][0].items()
    ev = d["events"][0]
    assert {k: ev[k] for k in ("pid", "comm", "family", "saddr", "daddr", "dport", "result", "failed")} == {
        "pid": 100, "comm": "curl", "family": 4, "saddr": "10.0.0.1", "daddr": "10.0.0.2", "dport": 9,
        "result": "refused", "failed": True,
    }
    assert d["lost"] == {"connects": 0, "results": 0, "interval": 0}


def test_empty_snapshot_says_so():
    text = render.to_text(snapshot(Aggregator(), port_filter=(1,)))
    assert "(no connects yet (filtered))" in text and "lost 0" in text


def test_pids_per_destination_are_capped_and_what_is_dropped_is_counted():
    """Process churn (a new pid per connect) must not grow a destination's
    pid list without bound."""
    agg = Aggregator()
    for i in range(5000):
        agg.feed(raw(te.EV_CONNECT, i, pid=1000 + i))
    (dest,) = snapshot(agg).destinations
    assert len(dest.pids) == MAX_DEST_PIDS
    assert dest.count == 5000 and dest.pids_dropped == 5000 - MAX_DEST_PIDS
    row = render.to_dict(snapshot(agg))["rows"][0]
    assert row["pids_dropped"] == 5000 - MAX_DEST_PIDS and len(row["pids"]) == MAX_DEST_PIDS
    assert len(json.dumps(render.to_dict(snapshot(agg))["rows"])) < 5_000
    assert f"+{5000 - MAX_DEST_PIDS} connects from others" in render.to_text(snapshot(agg))


def test_the_event_sample_is_shown_apart_from_losses():
    agg = Aggregator()
    feed_scenario(agg)
    snap = snapshot(agg, streamed=30, not_streamed=120, lost_connects=2, lost_new=2)
    line = render.to_text(snap).splitlines()[1]
    assert "lost 2 events (+2)" in line and "log: 120 attempts not streamed (rate limit)" in line
    d = render.to_dict(snap)
    assert (d["streamed"], d["not_streamed"]) == (30, 120)
    assert d["lost"] == {"connects": 2, "results": 0, "interval": 2}
    assert "Latest connects (newest first, 3 of 3 kept) (a sample: 120 attempts not streamed)" in render.to_text(snap)
    assert "not streamed" not in render.to_text(snapshot(agg))
    for bad in (0, True, "400", 10**7):
        with pytest.raises(ValueError, match="event rate"):
            TcpCollector(event_rate=bad)
        with pytest.raises(ValueError, match="event burst"):
            TcpCollector(event_burst=bad)
