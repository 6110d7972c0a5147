"""Page-cache counts that must be exact to the page, checked against what the
kernel itself says: a child's own /proc/self/io (pages read from disk),
mincore (pages resident), and the pages a child touches or writes. Files
that must stay cached are pinned by another process (mlock): DAMON evicts
cold page cache within seconds on these machines.

The numbers depend on the rung: the tracepoint rung counts pages, the
kprobe and fentry rungs count calls (one per folio), so the page-exact
checks run where the rung says its unit is pages, and a rung counting calls
is checked against the file's folios as the kernel reports them
(/proc/self/pagemap and /proc/kpageflags). Each test runs on every rung
this kernel offers (the kernel matrix's guests have kprobes and fentry)."""

import json
import mmap
import os

import pytest
import testenv
from bpfprogs import start_once
from cachefiles import MB, Pin, make_file
from rungs import rung_params
from shared import pid_filtered
from workload import Child

from bpftop.collectors.cache import CacheCollector

pytestmark = pytest.mark.bpf

PAGE = mmap.PAGESIZE

# Commands on stdin, one per line; one line of numbers on stdout after each.
#   evict PATH            drop PATH's pages: "<pages resident after>"
#   resident PATH         "<pages resident>" (mincore)
#   touch PATH            mmap PATH read-only and read one byte of every
#                         page: "<pages touched> <pages read from disk>
#                         <folios mapped>"
#   folios PATH           mmap PATH and touch it (cached: no reads from
#                         disk): "<folios mapped>"
#   overwrite PATH BS     rewrite PATH in place in BS-byte writes:
#                         "<pages written>"
#   read PATH BS          read PATH to the end in BS-byte reads:
#                         "<pages asked> <pages read from disk>"
CHILD = r"""
import mmap, os, sys, ctypes
PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)

def read_pages():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("read_bytes:"):
                return int(line.split()[1]) // PAGE

libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

def folios(p, size):
    # Pages of the mapping that are not the tail of a larger folio, by the
    # kernel's own page flags (root reads the frame numbers).
    n = (size + PAGE - 1) // PAGE
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(p // PAGE * 8)
        entries = f.read(n * 8)
    out = 0
    with open("/proc/kpageflags", "rb") as kf:
        for i in range(n):
            e = int.from_bytes(entries[i * 8:i * 8 + 8], "little")
            assert e >> 63 & 1, "page not present"
            kf.seek((e & ((1 << 55) - 1)) * 8)
            out += not (int.from_bytes(kf.read(8), "little") >> 16 & 1)  # KPF_COMPOUND_TAIL
    return out

def resident(path):
    # mincore on a mapping that is never touched: no fault, no page cache
    # access of our own
    size = os.path.getsize(path)
    n = (size + PAGE - 1) // PAGE
    vec = (ctypes.c_ubyte * n)()
    fd = os.open(path, os.O_RDONLY)
    p = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    os.close(fd)
    assert libc.mincore(ctypes.c_void_p(p), size, vec) == 0
    libc.munmap(ctypes.c_void_p(p), size)
    return sum(v & 1 for v in vec)

sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd, path, *rest = line.split()
    bs = int(rest[0]) if rest else 0
    if cmd == "evict":
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        out = str(resident(path))
    elif cmd == "resident":
        out = str(resident(path))
    elif cmd in ("touch", "folios"):
        size = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
        p = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        os.close(fd)
        before = read_pages()
        n = 0
        for off in range(0, size, PAGE):
            ctypes.c_char.from_address(p + off).value
            n += 1
        after = read_pages()
        f = folios(p, size)
        libc.munmap(ctypes.c_void_p(p), size)
        out = f"{n} {after - before} {f}" if cmd == "touch" else str(f)
    elif cmd == "overwrite":
        size = os.path.getsize(path)
        fd = os.open(path, os.O_WRONLY)
        buf = os.urandom(bs)
        for _ in range(size // bs):
            os.write(fd, buf)
        os.close(fd)
        out = str(size // PAGE)
    elif cmd == "read":
        size = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
        before = read_pages()
        while os.read(fd, bs):
            pass
        after = read_pages()
        os.close(fd)
        out = f"{(size + PAGE - 1) // PAGE} {after - before}"
    sys.stdout.write(out + "\n"); sys.stdout.flush()
"""

class Worker(Child):
    def __init__(self) -> None:
        super().__init__(CHILD)
        assert self.proc.stdout.readline() == "ready\n"

    def do(self, *words):
        return [int(x) for x in self.ask(" ".join(str(w) for w in words)).split()]


@pytest.fixture(scope="module", params=rung_params(CacheCollector, 3))
def on_each_rung(request, shared_collectors):
    """Per rung this kernel offers: the session's collector on that rung
    (one compile per rung serves every test of the session, tens of seconds
    each in a kernel-matrix guest) and a 32 MiB file that was written and
    pinned in the cache before any cache collector of the session started,
    so nothing was seen of its folios' size then (tests/conftest.py)."""
    c = shared_collectors.get(CacheCollector, request.param)
    yield c, shared_collectors.cache_file


@pytest.fixture
def file64():
    path = make_file(64 * MB)
    yield path
    os.unlink(path)


@pytest.fixture
def file32():
    path = make_file(32 * MB)
    yield path
    os.unlink(path)


def row_for(snap, pid):
    rows = [r for r in snap.rows if r.pid == pid]
    return rows[0] if rows else None


@pytest.mark.matrix
def test_mmap_cold_and_warm_reads_are_exact(on_each_rung, file64):
    collector, _ = on_each_rung
    with Worker() as w, pid_filtered(collector, [w.pid]):
        assert w.do("evict", file64) == [0]
        collector.collect()
        touched, from_disk, folios = w.do("touch", file64)
        cold = row_for(collector.collect(), w.pid)
        with Pin(file64) as pin:
            assert w.do("resident", file64) == [touched]
            collector.collect()
            touched2, from_disk2, _ = w.do("touch", file64)
            warm = row_for(collector.collect(), w.pid)
            pin.close()
        w.close()
    assert touched == touched2 == 16384 and from_disk2 == 0
    assert cold is not None and 0 < folios <= from_disk
    if collector.unit == "pages":
        # Before: 7,010 to 7,542 accesses and misses for 16,384 pages touched.
        assert cold.counts.accesses == touched
        assert cold.misses == min(from_disk, touched) and cold.counts.added == from_disk
        assert warm.counts.accesses == touched and warm.hits == touched and warm.misses == 0
    else:
        # One call per folio the fault path added (cachetop's count), none
        # for a warm file; a fault maps without marking the folio accessed,
        # so accesses, hits and misses are not promised here.
        assert collector.unit == "calls"
        assert cold.counts.added == folios, (folios, cold)
        assert warm is None or (warm.counts.added == 0 and warm.misses == 0), warm
    for r in (cold, warm):
        assert r is None or min(r.hits, r.misses, r.dirties) >= 0, r


@pytest.mark.matrix
def test_dirties_exact_for_a_file_cached_before_start(on_each_rung):
    c, file32 = on_each_rung
    # One file serves every rung: what an earlier rung's run overwrote is
    # written back first, so every page is clean as when the file was made.
    fd = os.open(file32, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    with Worker() as w, pid_filtered(c, [w.pid]):
        c.collect()
        written = w.do("overwrite", file32, MB)[0]
        r = row_for(c.collect(), w.pid)
        folios = w.do("folios", file32)[0]
        w.close()
    # Before: 32 or 33 dirties for 8,192 pages (1 MiB folios counted as one page).
    assert written == 8192 and r is not None
    dirtied = written if c.unit == "pages" else folios
    # The overwrite also updates the file's mtime: ext4 may dirty the page
    # of the block device that holds the inode (a page-cache page too, in
    # the same process), so one or two more than the data pages (calls:
    # folios).
    assert dirtied <= r.dirties <= dirtied + 2 and r.counts.added == 0, (folios, r)


# Becomes dd (same pid) on cue, so the collector can filter on it first.
DD = r"""
import os, sys
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
os.execvp("dd", ["dd", "if=" + sys.argv[1], "of=/dev/null", "bs=128k", "status=none"])
"""


@pytest.mark.matrix
def test_dd_of_a_cold_file_never_shows_negative_counts(file32):
    """dd bs=128k of a cold file: JSON hits, misses and percentages stay
    within their ranges, and the pages split exactly into hits and misses.
    mincore after says how many pages dd brought in."""
    with Worker() as w:
        assert w.do("evict", file32) == [0]
        with Child(DD, file32) as dd:
            assert dd.proc.stdout.readline() == "ready\n"
            # The interval must hold all of dd (slower in an emulated guest).
            interval = 3 * testenv.ONCE_SLOWER
            cli = start_once(["--json", "--tab", "cache", "-d", str(interval), "-p", str(dd.pid)])
            dd.proc.stdin.write("go\n")
            dd.proc.stdin.flush()
            assert dd.proc.wait(testenv.scaled(30)) == 0
            out, err = cli.communicate(timeout=testenv.scaled(60))
        brought_in = w.do("resident", file32)[0]
        w.close()
    assert cli.returncode == 0, err
    data = json.loads(out)
    (row,) = [r for r in data["rows"] if r["pid"] == dd.pid]
    for key in ("hits", "misses", "dirties", "accesses", "added", "dirtied"):
        assert row[key] >= 0, (key, row)  # before: hits -13
    for key in ("read_hit_pct", "write_hit_pct"):
        assert row[key] is None or 0 <= row[key] <= 100, (key, row)
    assert row["hits"] + row["misses"] == max(0, row["accesses"] - row["buffer_dirties"])
    if data["unit"] == "pages":
        # Its reads ask for every page once; dd's own start maps pages of
        # its binary and libraries (hits, when cached), which come on top.
        assert row["accesses"] >= 32 * MB // PAGE
        # None of the file was resident when dd started, so dd brought in
        # every page: each is its miss. mincore after is only a bound, since
        # DAMON may already have evicted some of them again (CI: 7,680 of
        # 8,192 resident after). Pages of dd's own binary, libraries and
        # locale files may be cold too: tens of pages, not hundreds.
        file_pages = 32 * MB // PAGE
        assert brought_in <= file_pages
        extra = row["added"] - file_pages
        # dd's first read updates the file's atime: ext4 may dirty the inode
        # table's block in dd's own context, a page or two that are not misses.
        assert row["dirtied"] <= 4, row
        assert 0 <= extra <= 0.05 * file_pages and row["misses"] == row["added"] - row["dirtied"], (brought_in, row)
        assert row["hits"] == row["accesses"] - row["misses"]
