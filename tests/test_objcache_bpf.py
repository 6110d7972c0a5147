"""Programs loaded from the compiled-object cache on real eBPF: the second
start of a tab compiles nothing and counts as exactly as the first, a
damaged or unsafe cache is compiled past, and nothing stays loaded."""

import os

import bcc
import pytest
from bpfprogs import held_bpf_objects, loaded_ids, prog_list, wait_until_ids_gone
from test_procs_bpf import check_ground_truth, tmp_files, window  # noqa: F401 (a fixture)
from test_syscalls_bpf import K, N, rows_by_name, run_filtered

from bpftop.bpf import objcache
from bpftop.collectors.procs import ProcsCollector
from bpftop.collectors.syscalls import SyscallsCollector
from bpftop.model import CollectorState
from bpftop.tabs import TABS, CollectorOptions

pytestmark = pytest.mark.bpf


def counted_compiles(monkeypatch):
    """A fresh cache status, and a list that grows by one per BCC compile."""
    monkeypatch.setattr(objcache, "status", objcache.CacheStatus())
    compiles = []
    real = bcc.BPF.__init__

    def counted(self, *args, **kwargs):
        compiles.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(bcc.BPF, "__init__", counted)
    return compiles


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache of the test's own, and the count of compiles."""
    place = tmp_path / "objects"
    monkeypatch.setenv(objcache.ENV, str(place))
    return place, counted_compiles(monkeypatch)


def kernel_names(collector):
    ids = loaded_ids(collector)
    return sorted(p.get("name", "") for p in prog_list() if p["id"] in ids)


def started(collector):
    collector.start()
    assert collector.status.state is CollectorState.RUNNING, collector.status.message
    return collector


def stopped(collector, maps_before):
    ids = loaded_ids(collector)
    collector.stop()
    assert wait_until_ids_gone(ids) == []
    assert held_bpf_objects()["map"] <= maps_before


@pytest.mark.matrix
def test_a_second_start_compiles_nothing_and_counts_exactly(monkeypatch):
    # On the session's cache (conftest.py): an earlier test may have
    # stored this program already, which spares a kernel-matrix guest a
    # compile of a minute; the second start must load it either way.
    compiles = counted_compiles(monkeypatch)
    maps_before = held_bpf_objects()["map"]
    first = started(SyscallsCollector())
    stopped(first, maps_before)
    assert objcache.status.stored + objcache.status.hits == ["syscalls"] and len(compiles) <= 1
    made = len(compiles)

    second = started(SyscallsCollector())
    try:
        assert objcache.status.hits[-1:] == ["syscalls"] and len(compiles) == made
        assert second.hook == first.hook
        second.set_latency(True)
        _, snaps = run_filtered(second)
    finally:
        stopped(second, maps_before)
    total = rows_by_name(snaps)
    assert total["getppid"][0] == N and total["getsid"][:2] == [K, K]
    assert total["getppid"][3] == N  # every call timed


def test_processes_from_the_cache_see_every_exec_open_and_signal(cache, tmp_files):  # noqa: F811
    _, compiles = cache
    maps_before = held_bpf_objects()["map"]
    stopped(started(ProcsCollector()), maps_before)
    c = started(ProcsCollector())
    try:
        assert objcache.status.hits == ["procs"] and compiles == [1]
        w, nobody_pid, before, after = window(c, tmp_files)
        check_ground_truth(w, nobody_pid, before, after, tmp_files)
    finally:
        stopped(c, maps_before)


COMPILED_TABS = [t for t in TABS if t != "bpf"]


@pytest.mark.parametrize("tab", COMPILED_TABS)
def test_every_tab_starts_from_the_cache_on_the_same_hook(cache, tab):
    _, compiles = cache
    maps_before = held_bpf_objects()["map"]
    spec = TABS[tab]
    cold = started(spec.make_collector(CollectorOptions()))
    hook, programs, shown = cold.hook, sorted(name for name, _ in cold.programs()), kernel_names(cold)
    cold.collect()
    stopped(cold, maps_before)
    made = len(compiles)
    assert made >= 1 and objcache.status.stored

    warm = started(spec.make_collector(CollectorOptions()))
    try:
        assert len(compiles) == made, "the second start compiled"
        assert objcache.status.hits
        assert warm.hook == hook
        assert sorted(name for name, _ in warm.programs()) == programs
        # bpftool shows the same names: the function's full name from its
        # BTF record, as for a compiled program.
        assert kernel_names(warm) == shown
        warm.collect()
    finally:
        stopped(warm, maps_before)


def test_a_compile_is_stored_once_and_loaded_after(cache):
    place, compiles = cache
    maps_before = held_bpf_objects()["map"]
    stopped(started(SyscallsCollector()), maps_before)
    assert objcache.status.stored == ["syscalls"] and compiles == [1]
    assert len(os.listdir(place)) == 1
    stopped(started(SyscallsCollector()), maps_before)
    assert objcache.status.hits == ["syscalls"] and compiles == [1]
    assert len(os.listdir(place)) == 1


def test_a_damaged_entry_is_compiled_again(cache):
    place, compiles = cache
    maps_before = held_bpf_objects()["map"]
    stopped(started(SyscallsCollector()), maps_before)
    (name,) = os.listdir(place)
    with open(place / name, "r+b") as f:
        f.seek(200)
        f.write(b"####")
    c = started(SyscallsCollector())
    try:
        assert compiles == [1, 1] and objcache.status.hits == []
        assert objcache.status.stored == ["syscalls", "syscalls"]
        _, snaps = run_filtered(c)
    finally:
        stopped(c, maps_before)
    assert rows_by_name(snaps)["getppid"][0] == N


def test_a_cache_directory_others_can_write_is_not_used(cache):
    place, compiles = cache
    place.mkdir(mode=0o700)
    os.chmod(place, 0o777)
    maps_before = held_bpf_objects()["map"]
    for _ in range(2):
        stopped(started(SyscallsCollector()), maps_before)
    assert compiles == [1, 1]
    assert os.listdir(place) == []
    assert "can be written by others" in objcache.status.disabled


def test_a_program_the_verifier_refuses_raises_and_its_log_is_kept(capfd):
    from bpftop.bpf import progload

    with pytest.raises(OSError):
        progload.load_program(5, b"tracepoint__bad", b"\x00" * 8, b"GPL", 0)  # 5: a tracepoint program
    assert "bpf: Failed to load program" in capfd.readouterr().err
