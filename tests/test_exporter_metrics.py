"""The exporter's families without BPF: fake collectors through the real
collection loop, parsed back from prometheus_client's exposition, and the
tabs' metrics kept monotonic across a collector's restart."""

import dataclasses

from fakes import FakeCollector, snapshot
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bpftop.bpf.stats import ProgramStats
from bpftop.exporter.base import Hist
from bpftop.exporter.metrics import ExporterMetrics, ProgramTotals
from bpftop.loop import CollectionLoop
from bpftop.model.disk import NSLOTS
from bpftop.model.syscalls import ProcessRow, SyscallRow
from bpftop.model.tcp import ESTABLISHED, REFUSED, FamilyCount, OutcomeCount, TcpSnapshot
from bpftop.render.tcp_metrics import TcpMetrics
from bpftop.tabs import TABS


class FailingDisk(FakeCollector):
    tab = "disk"
    title = "Disk"


def samples(registry):
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_failed_collector_reads_0_with_its_reason_and_the_other_counts():
    snaps = [snapshot(0, rows=[SyscallRow("read", 0, 10, 1, 1000, 10)], processes=[ProcessRow(42, "a\x1bb", 10)]),
             snapshot(1, rows=[SyscallRow("read", 0, 5, 0, 2000, 5)], processes=[ProcessRow(42, "a\x1bb", 5)])]
    good, bad = FakeCollector(snaps), FailingDisk(fail="no rung loads here")
    tab_metrics = {c.tab: TABS[c.tab].metrics() for c in (good, bad)}
    metrics = ExporterMetrics([good, bad], tab_metrics, top_n=3, per_process=True)
    loop = CollectionLoop([good, bad], 0.1, metrics.interval, metrics.status)
    metrics.read_costs = loop.read_costs
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    try:
        assert loop.run(2) == 2
        got = samples(registry)  # as a scrape sees it while the loop runs
    finally:
        loop.stop()
    assert got[("bpftop_collector_attached", (("tab", "disk"),))] == 0
    assert got[("bpftop_collector_attached", (("tab", "syscalls"),))] == 1
    assert got[("bpftop_collector_info", (("hook", ""), ("state", "running"), ("tab", "syscalls"),
                                          ("unit", "calls")))] == 1
    assert got[("bpftop_collector_failure_info", (("reason", "no rung loads here"), ("tab", "disk")))] == 1
    assert got[("bpftop_syscalls_total", (("syscall", "read"),))] == 15
    assert got[("bpftop_syscall_errors_total", (("syscall", "read"),))] == 1
    assert got[("bpftop_syscall_duration_seconds_total", (("syscall", "read"),))] == 3000 / 1e9
    assert got[("bpftop_syscall_timed_calls_total", (("syscall", "read"),))] == 15
    # The process name's escape character is shown, not sent.
    assert got[("bpftop_process_syscalls_total", (("comm", "a\\x1bb"), ("pid", "42")))] == 15
    assert got[("bpftop_collection_reads_total", (("tab", "syscalls"),))] == 2
    assert got[("bpftop_collection_reads_total", (("tab", "disk"),))] == 0
    assert got[("bpftop_disk_lost_completions_total", ())] == 0


def tcp(since, v4, established, refused, hist, lat_ns, new=0):
    return TcpSnapshot(
        interval_s=1.0, taken_at=since + 1, hook="t", since=since, destinations=(), processes=(), events=(),
        connects=new, failures=0, total_connects=v4, total_failures=refused,
        families=(FamilyCount(4, v4, refused), FamilyCount(6, 0, 0)), rate_history=(), lost_connects=0,
        lost_results=0, lost_new=0,
        outcome_counts=(OutcomeCount(4, ESTABLISHED, established), OutcomeCount(4, REFUSED, refused)),
        latency_hist=tuple(hist) + (0,) * (NSLOTS - len(hist)), latency_sum_ns=lat_ns,
    )


def test_tcp_counters_go_on_across_a_restart():
    m = TcpMetrics()
    m.fold(tcp(100.0, 5, 3, 2, [0, 5], 5000))
    m.fold(tcp(100.0, 8, 5, 3, [0, 8], 8000))
    assert m.attempts[4] == 8 and m.outcomes[(4, ESTABLISHED)] == 5 and m.outcomes[(4, REFUSED)] == 3
    # Restarted (a new ``since``): its counts start from zero again and add on.
    m.fold(tcp(200.0, 2, 2, 0, [0, 2], 1000))
    assert m.attempts[4] == 10 and m.outcomes[(4, ESTABLISHED)] == 7 and m.outcomes[(4, REFUSED)] == 3
    assert m.latency.count == 10 and m.latency.sum_ns == 9000
    fams = {f.name: f for f in m.families(top_n=5)}
    hist = {s.labels.get("le"): s.value for s in fams["bpftop_tcp_connect_latency_seconds"].samples
            if s.name.endswith("_bucket")}
    assert hist["1e-06"] == 0 and hist["2e-06"] == 10 and hist["+Inf"] == 10


def test_program_totals_carry_a_reloaded_program():
    p = ProgramTotals()
    p.update("disk", [("done", ProgramStats(7, 100, 1000))])
    p.update("disk", [("done", ProgramStats(7, 150, 1500))])
    p.update("disk", [("done", ProgramStats(9, 20, 200))])  # loaded anew: the kernel counts from 0
    assert p.totals() == {("disk", "done"): (170, 1700)}


def test_histogram_buckets_are_the_log2_slots_in_seconds():
    h = Hist()
    slots = [0] * NSLOTS
    slots[0], slots[3], slots[NSLOTS - 1] = 1, 2, 4
    h.add(slots, 123)
    b = h.buckets()
    assert b[0] == ("1e-06", 1) and b[3] == (repr(8e-06), 3) and b[-2][1] == 3 and b[-1] == ("+Inf", 7)
    assert len(b) == NSLOTS and [le for le, _ in b[:-1]] == sorted((le for le, _ in b[:-1]), key=float)


def test_every_tab_in_the_registry_has_metrics_with_a_unit():
    for spec in TABS.values():
        assert spec.metrics is not None, spec.id
        assert spec.metrics().unit, spec.id


def test_counters_never_go_down_when_an_interval_reads_negative():
    m = TABS["syscalls"].metrics()
    m.fold(snapshot(0, rows=[SyscallRow("read", 0, 10, 0, None, 0)]))
    m.fold(dataclasses.replace(snapshot(1), rows=(SyscallRow("read", 0, -3, 0, None, 0),)))
    assert m.calls["read"] == 10


def test_bpf_programs_count_up_per_program_bounded_to_top_n_and_names_escaped():
    from bpf_tab_fakes import bpf_snapshot

    m = TABS["bpf"].metrics()
    m.fold(bpf_snapshot(0))
    m.fold(bpf_snapshot(1))
    fams = {f.name: f for f in m.families(top_n=2)}
    runs = {tuple(s.labels.values()): s.value for s in fams["bpftop_bpf_program_runs"].samples}
    # Two intervals of 1000 and 1001 runs; the escape-named program ran 0 ns and is not in the top 2.
    assert runs == {("10", "bpftop_sc_exit", "raw_tracepoint"): 2001, ("11", "xdp_drop", "xdp"): 100}
    assert fams["bpftop_bpf_all_runs"].samples[0].value == 2001 + 100
    assert fams["bpftop_bpf_programs"].samples[0].value == 3
    assert fams["bpftop_bpf_map_memory_bytes"].samples[0].value == 81920
    every = {tuple(s.labels.values()) for s in m.families(top_n=10)[-1].samples}
    assert all("\x1b" not in name for _, name, _ in every) and len(every) == 3
    # Statistics off: nothing is added, the series stay.
    m.fold(bpf_snapshot(2, stats=False))
    fams = {f.name: f for f in m.families(top_n=2)}
    assert fams["bpftop_bpf_all_runs"].samples[0].value == 2101
    assert fams["bpftop_bpf_stats_enabled"].samples[0].value == 0
