"""maps.PerCpuArrayTotals against values written into a per-CPU array."""

import ctypes

import pytest

from bpftop.bpf import maps

pytestmark = pytest.mark.bpf

SOURCE = b"""
struct two { u64 a; u64 b; };
struct odd { u32 a; u64 b; };
BPF_PERCPU_ARRAY(pairs, struct two, 7);
BPF_PERCPU_ARRAY(odds, struct odd, 2);
int unused(void *ctx) { return 0; }
"""


@pytest.fixture(scope="module")
def module():
    import bcc

    b = bcc.BPF(text=SOURCE)
    yield b
    b.cleanup()


def test_sums_every_field_over_every_cpu(module):
    table = module[b"pairs"]
    for slot in range(7):
        per_cpu = table.Leaf()
        for cpu in range(table.total_cpu):
            per_cpu[cpu].a = 1000 * slot + cpu
            per_cpu[cpu].b = 2**40 + slot * cpu
        table[ctypes.c_int(slot)] = per_cpu
    got = maps.PerCpuArrayTotals(table).read()
    cpus = range(table.total_cpu)
    assert got == {
        "a": [sum(1000 * s + c for c in cpus) for s in range(7)],
        "b": [sum(2**40 + s * c for c in cpus) for s in range(7)],
    }


def test_a_struct_not_all_u64_is_refused(module):
    with pytest.raises(ValueError, match="u64"):
        maps.PerCpuArrayTotals(module[b"odds"])
