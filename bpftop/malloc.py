"""glibc's allocator, told how bpftop uses memory.

Each BCC compile (clang and LLVM in this process) allocates and frees
hundreds of megabytes. The console compiles in worker threads, and glibc
gives each thread its own arena, which keeps what was freed in it: the
console held about 385 MB RSS where one arena holds 245 MB. So bpftop asks
for one arena before any thread starts (its threads allocate little and
rarely at once: Python objects come from Python's own allocator), and
hands freed memory back to the kernel after each compile.

Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional

M_ARENA_MAX = -8

_libc: Optional[ctypes.CDLL] = None
_looked = False


def _glibc() -> Optional[ctypes.CDLL]:
    global _libc, _looked
    if not _looked:
        _looked = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                _libc = libc
        except OSError:
            pass
    return _libc


def one_arena() -> None:
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 1)


def trim() -> None:
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
