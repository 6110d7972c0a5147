"""Reading BPF maps against values written into real maps:
maps.PerCpuArrayTotals on per-CPU arrays, and maps.items on hashes (every
entry read, across several batch calls, as copies that a later read
leaves alone)."""

import ctypes

import pytest

from bpftop.bpf import maps

pytestmark = pytest.mark.bpf

SOURCE = b"""
struct two { u64 a; u64 b; };
struct odd { u32 a; u64 b; };
BPF_PERCPU_ARRAY(pairs, struct two, 7);
BPF_PERCPU_ARRAY(odds, struct odd, 2);
BPF_PERCPU_ARRAY(counters, u64, 6);
struct pair { u32 pid; u16 port; };
struct val { u64 count; char comm[16]; };
BPF_HASH(big, struct pair, struct val, 6000);
BPF_HASH(small, u32, u64, 8);
BPF_PERCPU_HASH(percpu, u32, u64, 3000);
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


@pytest.mark.matrix
def test_plain_counters_are_summed_in_one_call_and_see_each_new_value(module, monkeypatch):
    table = module[b"counters"]
    calls = []
    real = maps.PerCpuArrayTotals.read
    monkeypatch.setattr(maps.PerCpuArrayTotals, "read", lambda self: calls.append(1) or real(self))
    monkeypatch.setattr(type(table), "getvalue", no_key_walk)
    for rnd in (1, 2):
        for slot in range(6):
            per_cpu = table.Leaf()
            for cpu in range(table.total_cpu):
                per_cpu[cpu] = rnd * (10**9 * slot + cpu + 1)
            table[ctypes.c_int(slot)] = per_cpu
        cpus = range(table.total_cpu)
        assert maps.percpu_totals(table) == [sum(rnd * (10**9 * s + c + 1) for c in cpus) for s in range(6)]
    assert len(calls) == 2


def no_key_walk(*_):
    raise AssertionError("read key by key: the batch read failed")


@pytest.mark.matrix
def test_a_hash_larger_than_a_batch_is_read_whole_as_copies(module, monkeypatch):
    table = module[b"big"]
    table.clear()
    n = 3 * maps.CHUNK + 17  # several batch calls
    for i in range(n):
        k = table.Key(pid=i, port=i % 65536)
        v = table.Leaf(count=10 * i, comm=f"p{i}".encode())
        table[k] = v
    monkeypatch.setattr(table, "keys", no_key_walk)
    first = maps.items(table)
    assert len(first) == n
    got = {(k.pid, k.port): (v.count, bytes(v.comm).rstrip(b"\0")) for k, v in first}
    assert got == {(i, i % 65536): (10 * i, f"p{i}".encode()) for i in range(n)}
    monkeypatch.undo()
    table.clear()
    table[table.Key(pid=1, port=1)] = table.Leaf(count=99)
    again = maps.items(table)
    assert [(k.pid, v.count) for k, v in again] == [(1, 99)]
    # The first read's objects are its own: the second read did not overwrite them.
    assert {(k.pid, k.port): v.count for k, v in first} == {(i, i % 65536): 10 * i for i in range(n)}


def test_scalar_keys_and_an_empty_map(module):
    table = module[b"small"]
    table.clear()
    assert maps.items(table) == []
    for i in range(8):
        table[ctypes.c_uint32(i)] = ctypes.c_uint64(i * i)
    # Scalars come as ints, as from BCC's own batch read.
    assert sorted((maps.key_int(k), maps.key_int(v)) for k, v in maps.items(table)) == [(i, i * i) for i in range(8)]


@pytest.mark.matrix
def test_per_cpu_values_come_whole(module, monkeypatch):
    table = module[b"percpu"]
    table.clear()
    cpus = table.total_cpu
    for i in range(2000):
        leaf = table.Leaf()
        for c in range(cpus):
            leaf[c] = i * 100 + c
        table[ctypes.c_uint32(i)] = leaf
    monkeypatch.setattr(table, "keys", no_key_walk)
    got = {maps.key_int(k): list(v) for k, v in maps.items(table)}
    assert got == {i: [i * 100 + c for c in range(cpus)] for i in range(2000)}
