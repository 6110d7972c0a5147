"""A child process that does a known number of O_DIRECT reads and writes
(with fsync) on a file on the machine's disk, on cue."""

import os
import tempfile

from testenv import WORKDIR
from workload import Child

# The file is written and synced before "ready", so the measured window
# holds only the cued I/O (plus whatever else the machine does).
CHILD = r"""
import mmap, os, random, sys
path, reads, writes, fsync_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
BS, BLOCKS = 4096, 2048
buf = mmap.mmap(-1, BS)           # page aligned, as O_DIRECT wants
buf.write(b"x" * BS)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
for i in range(BLOCKS):
    os.pwritev(fd, [buf], i * BS)
os.fsync(fd)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
rnd = random.Random(7)
for _ in range(reads):
    os.preadv(fd, [buf], rnd.randrange(BLOCKS) * BS)
for i in range(writes):
    os.pwritev(fd, [buf], rnd.randrange(BLOCKS) * BS)
    if fsync_every and (i + 1) % fsync_every == 0:
        os.fsync(fd)
os.fsync(fd)
os.close(fd)
sys.stdout.write("done\n"); sys.stdout.flush()
sys.stdin.read()
"""


def disk_of(path: str) -> str:
    """The whole disk (as /sys/block names it) holding ``path``."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    link = os.path.realpath(f"/sys/dev/block/{major}:{minor}")
    if os.path.exists(os.path.join(link, "partition")):
        link = os.path.dirname(link)
    return os.path.basename(link)


def diskstats(disk: str) -> dict:
    """Completed I/Os of one disk from /proc/diskstats."""
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if p[2] == disk:
                v = [int(x) for x in p[3:]]
                return {
                    "reads": v[0],
                    "read_sectors": v[2],
                    "writes": v[4],
                    "write_sectors": v[6],
                    "discards": v[11] if len(v) > 11 else 0,
                    "flushes": v[15] if len(v) > 15 else 0,
                }
    raise KeyError(disk)


def delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


class DiskWorkload(Child):
    def __init__(self, reads: int, writes: int, fsync_every: int = 50, directory: str = WORKDIR) -> None:
        fd, self.path = tempfile.mkstemp(prefix="bpftop-disk-test-", dir=directory)
        os.close(fd)
        self.reads, self.writes = reads, writes
        super().__init__(CHILD, self.path, reads, writes, fsync_every)
        line = self.proc.stdout.readline()
        assert line == "ready\n", f"workload did not start: {line!r}"
        self.disk = disk_of(self.path)

    def run(self) -> None:
        assert self.ask("go") == "done\n"

    def __exit__(self, *exc):
        super().__exit__(*exc)
        try:
            os.unlink(self.path)
        except OSError:
            pass


def device_in_flight(disk: str) -> int:
    """Requests in flight on a disk, by the block layer's own count."""
    with open(f"/sys/block/{disk}/inflight") as f:
        return sum(int(x) for x in f.read().split())
