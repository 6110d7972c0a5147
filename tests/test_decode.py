"""Decoding and aggregation of the syscalls collector's kernel counters."""

from types import SimpleNamespace

import pytest

from bpftop.bpf.loader import define_flags
from bpftop.collectors import syscall_names
from bpftop.collectors.pidfilter import MODE_ALL, MODE_EXCEPT, MODE_ONLY, PidFilter, normalise
from bpftop.collectors.syscall_counts import Counter, process_rows, sum_percpu, syscall_rows


def test_sum_percpu_adds_every_cpu():
    cpus = [SimpleNamespace(count=3, errors=1, total_ns=30, timed=3), SimpleNamespace(count=2, errors=0, total_ns=5, timed=1)]
    assert sum_percpu(cpus) == Counter(5, 1, 35, 4)


def test_rows_are_interval_differences_busiest_first():
    prev = {0: Counter(10, 1, 100, 10), 1: Counter(5, 0, 50, 5)}
    cur = {0: Counter(15, 3, 160, 14), 1: Counter(5, 0, 50, 5), 2: Counter(40, 0, 400, 40)}
    rows = syscall_rows(cur, prev, nr_syscalls=512, latency=True, namer=lambda nr: f"s{nr}")
    assert [(r.syscall, r.count, r.errors, r.total_ns) for r in rows] == [("s2", 40, 0, 400), ("s0", 5, 2, 60)]
    assert rows[1].avg_ns == 60 / 4  # average over timed calls only


def test_latency_off_has_no_times():
    rows = syscall_rows({0: Counter(3, 0, 0, 0)}, {}, 512, latency=False)
    assert rows[0].total_ns is None and rows[0].avg_ns is None


def test_out_of_table_numbers_are_other():
    rows = syscall_rows({512: Counter(2)}, {}, 512, latency=False)
    assert rows[0].syscall == "(other)"


def test_process_rows_skip_idle_and_new_processes_count_whole():
    cur = {1: (10, "a"), 2: (7, "b"), 3: (4, "c")}
    prev = {1: 10, 2: 2}
    assert [(p.pid, p.comm, p.count) for p in process_rows(cur, prev)] == [(2, "b", 5), (3, "c", 4)]


def test_syscall_names_x86_64():
    if syscall_names.platform.machine() != "x86_64":
        pytest.skip("x86_64 numbering")
    assert syscall_names.name(110) == "getppid"
    assert syscall_names.name(0) == "read"
    assert syscall_names.number("getsid") == 124
    assert syscall_names.name(99999) == "syscall_99999"


def test_parse_unistd():
    text = "#define __NR_read 0\n#define __NR_write 1\n#define __NR_foo_bar 451\n#define OTHER 3\n"
    assert syscall_names.parse_unistd(text) == {0: "read", 1: "write", 451: "foo_bar"}


def test_define_flags_are_typed():
    assert define_flags({"NR": 512, "LATENCY": True, "PER_PROCESS": False}) == ["-DLATENCY=1", "-DNR=512"]
    for bad in ({"nr": 1}, {"A B": 1}, {"X": "1; system()"}, {"X": 1.5}, {"X=1 -DY": 1}):
        with pytest.raises(ValueError):
            define_flags(bad)


def test_pid_normalise():
    assert normalise([5, 3, 5]) == (3, 5)
    for bad in ([0], [-1], [2**23], ["12"], [True]):
        with pytest.raises(ValueError):
            normalise(bad)


class FakeMap(dict):
    Key = staticmethod(lambda v: v)
    Leaf = staticmethod(lambda v: v)

    def __setitem__(self, k, v):
        super().__setitem__(getattr(k, "value", k), getattr(v, "value", v))


def test_pid_filter_writes_maps_and_mode():
    mode, pids = FakeMap(), FakeMap()
    f = PidFilter([9, 4])
    f.bind(mode, pids)
    assert mode[0] == MODE_ONLY and set(pids) == {4, 9}
    f.set([4], exclude=True)
    assert mode[0] == MODE_EXCEPT and set(pids) == {4}
    f.set([])
    assert mode[0] == MODE_ALL and not pids
