"""Scripted BPF-tab snapshots and a fake collector for the text and UI tests."""

import itertools
import os
import time

from fakes import FakeCollector

from bpftop.collectors.capabilities import Capabilities
from bpftop.model.bpf import BpfSnapshot, Cost, MapRow, Owner, ProgramRow


def program(prog_id, name, runs, run_ns, attach=(), owners=(), ours=False, type_="raw_tracepoint", maps=()):
    cost = None if runs is None else Cost(runs, run_ns, 1.0)
    return ProgramRow(
        id=prog_id, type=type_, name=name, tag="0123456789abcdef", attach=tuple(attach), cost=cost,
        total_runs=None if runs is None else runs * 10, total_run_ns=None if runs is None else run_ns * 10,
        recursion_misses=0, loaded_at=time.time() - 60, uid=0, xlated_bytes=200, jited_bytes=120,
        verified_insns=11, map_ids=tuple(maps), owners=tuple(owners), ours=ours,
    )


def bpf_snapshot(seq=0, stats=True):
    own = os.getpid()
    r = (lambda n: n) if stats else (lambda n: None)
    rows = (
        program(10, "bpftop_sc_exit", r(1000 + seq), 400_000, ["raw_tracepoint sys_exit"],
                [Owner(own, "bpftop")], ours=True, maps=[5]),
        program(11, "xdp_drop", r(50), 5_000_000, ["xdp eth0"], [Owner(4242, "cilium-agent")], type_="xdp"),
        program(12, "evil\x1b[2Jname", r(0), 0, [], [Owner(77, "sh\x07ell"), Owner(78, "sshd")],
                type_="socket_filter"),
    )
    return BpfSnapshot(
        interval_s=1.0, taken_at=time.time(), rows=rows,
        maps=(MapRow(5, "hash", "counts", 1024, 3, True, 81920),),
        stats_on=stats, stats_how="sysctl" if stats else "",
        programs_total=3, cpu_pct_total=0.54 if stats else None, map_bytes_total=81920, maps_total=1,
        own_pid=own, hook="bpf(2) object info",
    )


class FakeBpfCollector(FakeCollector):
    tab = "bpf"
    title = "BPF"
    hook_name = "bpf(2) object info"
    hook_points = ("BPF_PROG_GET_NEXT_ID",)
    CAPABILITIES = Capabilities()

    def __init__(self, stats=True):
        super().__init__(snapshots=(bpf_snapshot(i, stats) for i in itertools.count()))
