"""Files for the page-cache tests: written to the test disk, and pinned in
the cache by another process (DAMON evicts cold page cache within seconds
on these machines)."""

import os
import tempfile

import testenv
from workload import Child

MB = 1 << 20

# Maps a file and locks it in memory until its stdin closes.
PINNER = r"""
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
path = sys.argv[1]
size = os.path.getsize(path)
fd = os.open(path, os.O_RDONLY)
p = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
if libc.mlock(ctypes.c_void_p(p), size) != 0:
    sys.stdout.write(f"error {ctypes.get_errno()}\n")
else:
    sys.stdout.write("pinned\n")
sys.stdout.flush()
sys.stdin.read()
"""


class Pin(Child):
    """Keeps a file's pages resident while open (another process: its own
    faults are not the worker's)."""

    def __init__(self, path: str) -> None:
        super().__init__(PINNER, path)
        line = self.proc.stdout.readline()
        assert line == "pinned\n", line


def make_file(size: int, prefix: str = "bpftop-cache-exact-") -> str:
    """A file of ``size`` random bytes on the test disk, written and synced."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=testenv.WORKDIR)
    block = os.urandom(MB)
    for _ in range(size // MB):
        os.write(fd, block)
    os.fsync(fd)
    os.close(fd)
    return path
