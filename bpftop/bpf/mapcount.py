"""How many entries a BPF map holds now: the kernel keeps no count, so
hash maps are walked, in batches where the kernel offers them."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Tuple

from .objinfo import (
    BPF_MAP_GET_NEXT_KEY,
    BPF_MAP_LOOKUP_BATCH,
    BpfError,
    MapInfo,
    bpf,
)

# Hash maps whose entries BPF_MAP_LOOKUP_BATCH hands over many per call.
BATCH_MAPS = frozenset({"hash", "percpu_hash", "lru_hash", "lru_percpu_hash"})
PERCPU_MAPS = frozenset({"percpu_hash", "lru_percpu_hash", "percpu_array"})
# Bytes of values one batch call may copy out.
_BATCH_BYTES = 1 << 20


def possible_cpus(path: str = "/sys/devices/system/cpu/possible") -> int:
    """How many CPUs a per-CPU map keeps a value for ("0-3,8-11" -> 8)."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return os.cpu_count() or 1
    total = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        total += (int(hi) - int(lo) + 1) if hi else 1
    return max(1, total)


def count_entries(fd: int, info: MapInfo, limit: int) -> Tuple[int, bool]:
    """How many entries a hash-like map holds; (count, complete): at
    ``limit`` counting stops and says so. Batch lookups where the kernel
    has them (a few calls for thousands of entries), else key by key."""
    if info.type in BATCH_MAPS:
        try:
            return _count_batched(fd, info, limit)
        except BpfError as e:
            if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524):  # 524: ENOTSUPP
                raise
    return count_keys(fd, info.key_size, limit)


def _count_batched(fd: int, info: MapInfo, limit: int) -> Tuple[int, bool]:
    value = (info.value_size + 7) // 8 * 8 * (possible_cpus() if info.type in PERCPU_MAPS else 1)
    n = max(16, min(4096, _BATCH_BYTES // max(1, value)))
    token_in = ctypes.create_string_buffer(max(8, info.key_size))
    token_out = ctypes.create_string_buffer(max(8, info.key_size))
    keys = ctypes.create_string_buffer(max(1, info.key_size) * n)
    values = ctypes.create_string_buffer(max(1, value) * n)
    count, first = 0, True
    while count < limit:
        attr = (ctypes.c_uint64 * 8)()
        attr[0] = 0 if first else ctypes.addressof(token_in)
        attr[1] = ctypes.addressof(token_out)
        attr[2], attr[3] = ctypes.addressof(keys), ctypes.addressof(values)
        attr[4] = n | (fd << 32)  # count, map_fd
        try:
            bpf(BPF_MAP_LOOKUP_BATCH, attr)
        except BpfError as e:
            if e.errno == errno.ENOENT:  # the last batch: its count still holds
                return count + int(attr[4] & 0xFFFFFFFF), True
            if e.errno == errno.ENOSPC and n < 65536:  # a bucket bigger than the batch
                n *= 2
                keys = ctypes.create_string_buffer(max(1, info.key_size) * n)
                values = ctypes.create_string_buffer(max(1, value) * n)
                continue
            raise
        count += int(attr[4] & 0xFFFFFFFF)
        ctypes.memmove(token_in, token_out, ctypes.sizeof(token_out))
        first = False
    return count, False


def count_keys(fd: int, key_size: int, limit: int) -> Tuple[int, bool]:
    """How many keys a hash-like map holds, walking BPF_MAP_GET_NEXT_KEY;
    (count, complete): at ``limit`` the walk stops and says so."""
    key = ctypes.create_string_buffer(max(1, key_size))
    nxt = ctypes.create_string_buffer(max(1, key_size))
    attr = (ctypes.c_uint64 * 4)()
    attr[0] = fd
    attr[1] = 0  # NULL key: the first one
    attr[2] = ctypes.addressof(nxt)
    count = 0
    while count < limit:
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return count, True
            raise
        count += 1
        ctypes.memmove(key, nxt, key_size)
        attr[1] = ctypes.addressof(key)
    return count, False
