"""The cache collector on real eBPF, checked against page-cache work a child
process does on cue: a cold read of an evicted 64 MiB file, a warm read,
writes. Assertions are filtered by the child's pid, so other processes on
the machine (other engineers' tests) cannot move them."""

import json
import os
import subprocess
import sys
import time

import pytest
import testenv
import workload
from bpfprogs import loaded_ids, start_once, wait_until_ids_gone
from cachefiles import make_file
from rungs import rung_params
from shared import pid_filtered

from bpftop.bpf import loader
from bpftop.collectors.cache import CacheCollector
from bpftop.model import CollectorState

pytestmark = pytest.mark.bpf

MB = 1 << 20
SIZE = 64 * MB
PAGES = SIZE // 4096  # 16384
# /var/tmp (or a kernel-matrix guest's virtio disk) is on a real disk, unlike a tmpfs /tmp,
# so eviction and re-reading go through the page cache and readahead.
WORKDIR = testenv.WORKDIR

# Commands on stdin, one per line; "done" on stdout after each.
#   evict PATH          fsync + posix_fadvise(DONTNEED): drop PATH's pages
#   read PATH BS        read PATH to the end in BS-byte read() calls
#   write PATH BS       create PATH anew, write SIZE bytes in BS-byte writes
#   overwrite PATH BS   rewrite PATH in place (its pages already cached)
#   fsync PATH
CHILD = r"""
import os, sys
SIZE = int(sys.argv[1])
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd, path, *rest = line.split()
    bs = int(rest[0]) if rest else 0
    if cmd == "evict":
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    elif cmd == "read":
        # O_NOATIME: a read's atime update can dirty an inode block in the
        # reader's context (ext4, relatime, the first read after a write),
        # which would count as the reader dirtying a page.
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
        while os.read(fd, bs):
            pass
        os.close(fd)
    elif cmd in ("write", "overwrite"):
        flags = os.O_WRONLY | (os.O_CREAT | os.O_TRUNC if cmd == "write" else 0)
        fd = os.open(path, flags, 0o600)
        buf = os.urandom(bs)
        for _ in range(SIZE // bs):
            os.write(fd, buf)
        os.close(fd)
    elif cmd == "fsync":
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    sys.stdout.write("done\n"); sys.stdout.flush()
"""


class Reader(workload.Child):
    def __init__(self) -> None:
        super().__init__(CHILD, SIZE)
        assert self.proc.stdout.readline() == "ready\n"

    def do(self, *words) -> None:
        assert self.ask(" ".join(str(w) for w in words)) == "done\n"


@pytest.fixture(scope="module")
def collector():
    c = CacheCollector()
    c.start()
    ids = loaded_ids(c)
    yield c
    c.stop()
    assert wait_until_ids_gone(ids) == []


@pytest.fixture
def data_file():
    """A 64 MiB file on disk, written and synced by the test process."""
    path = make_file(SIZE, prefix="bpftop-cache-")
    try:
        yield path
    finally:
        os.unlink(path)


@pytest.fixture
def new_path():
    path = os.path.join(WORKDIR, f"bpftop-cache-w-{os.getpid()}-{time.monotonic_ns()}")
    yield path
    if os.path.exists(path):
        os.unlink(path)


def row_for(snap, pid):
    rows = [r for r in snap.rows if r.pid == pid]
    assert len(rows) <= 1
    return rows[0] if rows else None


def near(value, target, tolerance=0.10):
    return abs(value - target) <= tolerance * target


# Other tests on this machine drop the page cache (drop_caches) to force
# disk I/O; one landing during a warm read really does turn hits into
# misses. A few tries tell that from a counting bug, which fails them all.
TRIES = 3


def warm_read(collector, child, path, bs):
    for _ in range(TRIES):
        child.do("read", path, bs)
        snap = collector.collect()
        row = row_for(snap, child.pid)
        if row is not None and row.counts.added <= 0.01 * PAGES:
            break
    return snap


def test_tracepoint_rung_runs_here(collector):
    assert collector.status.state is CollectorState.RUNNING
    assert collector.hook == "tracepoints" and collector.unit == "pages"
    # This kernel's BTF describes mm_filemap_get_pages: read as a raw tracepoint.
    assert "bpftop_ca_read_raw" in {name for name, _ in collector.programs()}


@pytest.mark.parametrize("bs", [128 * 1024, 1 * MB], ids=["128KiB-reads", "1MiB-reads"])
def test_cold_then_warm_read(collector, data_file, bs):
    with Reader() as child:
        collector.set_kernel_filter("pid", [child.pid])
        child.do("evict", data_file)
        collector.collect()
        child.do("read", data_file, bs)
        cold = collector.collect()
        warm = warm_read(collector, child, data_file, bs)
        child.close()

    c = row_for(cold, child.pid)
    assert c is not None, cold.rows
    # Every page came from disk, added in the reader's own context
    # (synchronous and asynchronous readahead both run there).
    assert near(c.counts.added, PAGES), c
    assert near(c.misses, PAGES), c
    assert c.hits <= 0.10 * PAGES, c
    assert c.read_hit_pct is not None and c.read_hit_pct <= 10.0
    assert c.dirties == 0

    w = row_for(warm, child.pid)
    assert w is not None, warm.rows
    assert near(w.hits, PAGES), w
    assert w.misses <= 0.01 * PAGES, w
    assert w.counts.added <= 0.01 * PAGES
    assert w.read_hit_pct >= 99.0

    # The kernel filter passes only the child, so the system totals are its.
    for snap, row in ((cold, c), (warm, w)):
        assert [r.pid for r in snap.rows] == [child.pid]
        assert snap.totals == row.counts


@pytest.mark.matrix
@pytest.mark.parametrize("rung", rung_params(CacheCollector, 3))
def test_every_rung_cold_then_warm_read(rung, data_file, shared_collectors):
    """Each rung this kernel offers: a cold read is all misses, a warm one
    all hits. Where a rung counts calls (kprobes, fentry: one per folio),
    the file's folios are single pages on these filesystems, so calls and
    pages agree; the rung says which it counts in ``unit``. The session's
    collector on that rung (tests/shared.py); session end checks that it
    leaves nothing loaded."""
    c = shared_collectors.get(CacheCollector, rung)
    s = CacheCollector().strategies()[rung]
    assert c.hook == s.name.split(" (")[0]
    assert c.status.state is CollectorState.RUNNING
    assert c.unit in ("pages", "calls")
    check_cold_then_warm(c, data_file)


def check_cold_then_warm(c, data_file):
    """A cold read of the file is all misses, a warm one all hits."""
    with Reader() as child, pid_filtered(c, [child.pid]):
        child.do("evict", data_file)
        c.collect()
        child.do("read", data_file, 128 * 1024)
        cold = c.collect()
        warm = warm_read(c, child, data_file, 128 * 1024)
        child.close()
    r = row_for(cold, child.pid)
    assert r is not None, cold.rows
    assert near(r.misses, PAGES) and r.hits <= 0.10 * PAGES, r
    w = row_for(warm, child.pid)
    assert w is not None, warm.rows
    assert near(w.hits, PAGES) and w.misses <= 0.01 * PAGES, w


@pytest.mark.matrix
@pytest.mark.parametrize("rung", rung_params(CacheCollector, 3))
def test_a_process_that_execs_shows_its_new_name(rung, data_file, shared_collectors):
    """Each CPU keeps a run of counts for the process it last counted and
    takes its name as the run starts; exec ends the run. A shell that
    execs cat reads cat's binary under the shell's name first, then the
    file: the row is cat's, with every page of the file."""
    c = shared_collectors.get(CacheCollector, rung)
    sh = subprocess.Popen(["sh", "-c", f'read go; exec cat "{data_file}"'], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL)
    try:
        with pid_filtered(c, [sh.pid]):
            c.collect()
            sh.communicate(b"go\n", timeout=testenv.scaled(60))
            snap = c.collect()
    finally:
        if sh.poll() is None:
            sh.kill()
            sh.wait()
    r = row_for(snap, sh.pid)
    assert r is not None, snap.rows
    assert r.comm == "cat" and r.hits + r.misses >= PAGES, r


def test_the_read_hook_counts_alike_as_a_raw_and_as_a_classic_tracepoint(data_file, monkeypatch):
    """mm_filemap_get_pages is read as a raw tracepoint where the kernel's
    BTF shows the arguments the program reads (here), else as the classic
    tracepoint: both count a cold and a warm read exactly. The classic one
    is forced here (a compile of its own, host only)."""
    from bpftop.bpf import btf
    from bpftop.collectors import cache as cache_mod

    if not cache_mod.get_pages_raw():
        pytest.skip("this kernel's BTF does not describe mm_filemap_get_pages: only the classic tracepoint")
    b = btf.Btf()
    try:
        assert b.raw_tracepoint_args("sys_exit") == ("pt_regs *", "long int")  # an ABI that never changed
        assert b.raw_tracepoint_args("no_such_tracepoint") is None
    finally:
        b.close()
    monkeypatch.setattr(cache_mod, "get_pages_raw", lambda: False)
    c = CacheCollector()
    c.start()
    try:
        assert "bpftop_ca_read_raw" not in {name for name, _ in c.programs()}
        check_cold_then_warm(c, data_file)
    finally:
        c.stop()


@pytest.mark.parametrize("bs", [4096, 1 * MB], ids=["4KiB-writes", "1MiB-writes"])
def test_writer_shows_dirties(collector, new_path, bs):
    with Reader() as child:
        collector.set_kernel_filter("pid", [child.pid])
        child.do("write", new_path, bs)
        snap = collector.collect()
        for _ in range(TRIES):  # see warm_read
            child.do("fsync", new_path)
            collector.collect()
            child.do("overwrite", new_path, bs)
            over = collector.collect()
            o = row_for(over, child.pid)
            if o is not None and o.counts.added <= 0.01 * PAGES:
                break
        child.close()

    r = row_for(snap, child.pid)
    assert r is not None, snap.rows
    # Large folios (1 MiB writes make order-8 folios here) count all their
    # pages, sized from when they were added.
    assert near(r.dirties, PAGES), r
    assert near(r.counts.added, PAGES), r
    assert r.misses <= 0.01 * PAGES  # pages added for writing are not read misses
    assert r.write_hit_pct is not None and r.write_hit_pct <= 10.0

    # Rewriting the cached, clean file: dirtied again, nothing added.
    o = row_for(over, child.pid)
    assert o is not None, over.rows
    assert near(o.dirties, PAGES), o
    assert o.counts.added <= 0.01 * PAGES
    assert o.write_hit_pct >= 99.0


def test_exclude_filter_and_comm_filter(collector, data_file):
    with Reader() as child:
        collector.set_kernel_filter("pid", [child.pid], exclude=True)
        collector.collect()
        child.do("read", data_file, 128 * 1024)
        snap = collector.collect()
        assert row_for(snap, child.pid) is None

        collector.set_kernel_filter("pid", [child.pid])
        collector.set_comm_filter("^no-such-command$")
        try:
            child.do("read", data_file, 128 * 1024)
            hidden = collector.collect()
        finally:
            collector.set_comm_filter(None)
        assert hidden.rows == () and hidden.comm_filter == "^no-such-command$"
        # The comm filter narrows rows, not what the kernel counted.
        assert near(hidden.system.total, PAGES)
        child.close()


def test_bad_filters_change_nothing(collector):
    with Reader() as child:
        collector.set_kernel_filter("pid", [child.pid])
        with pytest.raises(ValueError, match="out of range"):
            collector.set_kernel_filter("pid", [0])
        with pytest.raises(ValueError, match="not a valid regular expression"):
            collector.set_comm_filter("(")
        assert collector.filter.pids == (child.pid,)
        snap = collector.collect()
        assert snap.pid_filter == (child.pid,) and snap.comm_filter == ""
        child.close()


def test_exited_processes_leave_the_kernel_map(collector, data_file):
    with Reader() as child:
        collector.set_kernel_filter("pid", [child.pid])
        child.do("read", data_file, 128 * 1024)
        child.close()
    snap = collector.collect()  # reports the child's last counts...
    assert row_for(snap, child.pid) is not None
    table = collector._bpf[b"proc_stats"]
    assert child.pid not in [k.value for k in table.keys()]  # ...and forgets it


def test_kprobe_variant_passes_the_verifier():
    """The kprobe rung cannot attach on this kernel (no CONFIG_KPROBES), but
    its programs must compile and load, with and without the tracepoint
    stand-in for an inlined folio_account_dirtied."""
    import bcc

    c = CacheCollector()
    for via_tp in (False, True):
        bpf = loader.compile_program(
            "cache", dict(c._base_defines(), HOOK_KPROBE=True, DIRTY_VIA_TP=via_tp, DIRTY_TP_FOLIO=1)
        )
        try:
            names = ["bpftop_ca_access", "bpftop_ca_add", "bpftop_ca_bufdirty"]
            if not via_tp:
                names.append("bpftop_ca_dirtied")
            for name in names:
                assert bpf.load_func(name.encode(), bcc.BPF.KPROBE).fd >= 0
        finally:
            loader.close_program(bpf)


def test_once_json_cli_with_pid_filter(data_file):
    with Reader() as child:
        child.do("read", data_file, 128 * 1024)  # warm it
        cli = start_once(["--json", "--tab", "cache", "-d", "5", "-p", str(child.pid)])
        child.do("read", data_file, 128 * 1024)
        out, err = cli.communicate(timeout=60)
        child.close()
    assert cli.returncode == 0, err
    data = json.loads(out)
    assert data["tab"] == "cache" and 4.5 < data["interval_s"] < 6 and data["unit"] == "pages"
    assert [r["pid"] for r in data["rows"]] == [child.pid]
    row = data["rows"][0]
    assert set(row) >= {"pid", "uid", "comm", "hits", "misses", "dirties", "read_hit_pct", "write_hit_pct"}
    assert row["uid"] == os.getuid() and row["comm"].startswith("python")
    # Hits and misses split the pages read; how they split depends on
    # whether someone dropped the cache meanwhile (see warm_read).
    assert near(row["hits"] + row["misses"], PAGES) and row["hits"] > 0
    assert set(data["totals"]) >= {"accesses", "hits", "misses", "dirties", "hit_ratio_pct", "buffers_mb", "cached_mb"}
    assert data["totals"]["cached_mb"] > 0


def test_once_text_cli():
    res = subprocess.run(
        [sys.executable, "-m", "bpftop", "--once", "--tab", "cache", "-d", "0.5"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # the fentry rung is checked quietly
    lines = res.stdout.splitlines()
    assert lines[0].startswith("bpftop cache") and "hook: tracepoints" in lines[0]
    assert lines[1].startswith("hit ") and "Cached" in lines[1]
    assert any(ln.lstrip().startswith("PID") and "READ_HIT%" in ln for ln in lines)


def test_doctor_shows_every_rung_and_why(doctor_run):
    res = doctor_run
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout[res.stdout.index("cache collector"):]
    assert "[chosen] tracepoints (counts pages" in out
    assert "kprobes (counts calls, as cachetop" in out and "fentry (counts calls" in out
    from bpftop.bpf import system

    if not system.kprobes_available()[0]:
        assert "kernel has no kprobes" in out
