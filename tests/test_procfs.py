"""/proc read with few syscalls: a kept file reads what the kernel says
now, and the listing of live processes finds exits and new processes."""

import os
import subprocess
import sys

from bpftop import procfs


def test_a_kept_file_reads_the_kernels_figures_now_with_one_fd(monkeypatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(procfs.os, "open", lambda *a: opened.append(a[0]) or real_open(*a))
    kept = procfs.KeptFile("/proc/self/stat")
    first = kept.read()
    assert first.split()[0] == str(os.getpid()).encode()
    for _ in range(5):
        assert kept.read().split()[0] == first.split()[0]
    assert opened == ["/proc/self/stat"]  # opened once, not per read
    # What the kernel says changes between reads: the task's minor faults
    # (field 10) grow as memory is touched, and a kept fd sees it.
    before = int(kept.read().split()[9])
    bytearray(64 << 20)
    assert int(kept.read().split()[9]) > before
    kept.close()


def test_a_kept_file_reads_past_one_chunk(tmp_path):
    big = tmp_path / "big"
    data = bytes(range(256)) * 1000  # 256,000 bytes: four pread calls
    big.write_bytes(data)
    assert procfs.KeptFile(str(big)).read() == data


def test_exited_finds_an_exit_and_not_a_process_started_after_the_listing(monkeypatch):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert procfs.exited([os.getpid(), child.pid]) == [child.pid]
    monkeypatch.setattr(procfs, "_listing", (float("-inf"), frozenset()))
    monkeypatch.setattr(procfs, "LISTING_S", 3600.0)  # the listing stays, however slow the start below
    procfs.live_pids()  # a listing, then a process the listing cannot have
    late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert late.pid not in procfs.live_pids()
        assert procfs.exited([late.pid]) == []
    finally:
        late.kill()
        late.wait()


def test_nothing_to_check_lists_nothing(monkeypatch):
    monkeypatch.setattr(procfs, "live_pids", lambda: (_ for _ in ()).throw(AssertionError("listed /proc")))
    assert procfs.exited([]) == [] and procfs.exited(iter(())) == []
