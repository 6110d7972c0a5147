"""Reading BPF maps through BCC, and decoding what they hold."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, Container, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import procfs

# Entries one batch call reads into buffers kept with the table. BCC's own
# batch read allocates (and the kernel faults in) buffers for the whole map
# on every read: 16,384 entries of the TCP aggregate, 1.6 MB, six times a
# second on an idle console. A hash bucket never holds this many.
CHUNK = 1024


class _Chunk:
    def __init__(self, table: Any) -> None:
        self.entries = max(1, min(CHUNK, int(table.max_entries)))
        self.keys = (table.Key * self.entries)()
        self.values = (table.Leaf * self.entries)()
        self.key_size = ctypes.sizeof(table.Key)


def _copy(value: Any) -> Any:
    # An element of a ctypes array of structs shares the array's buffer,
    # which the next read overwrites; ints (scalar keys) are values already.
    return type(value).from_buffer_copy(value) if isinstance(value, ctypes.Array | ctypes.Structure) else value


def _batch_items(table: Any) -> List[Tuple[Any, Any]]:
    import bcc.libbcc

    chunk = getattr(table, "_bpftop_chunk", None)
    if chunk is None:
        chunk = _Chunk(table)
        table._bpftop_chunk = chunk
    lib = bcc.libbcc.lib
    out: List[Tuple[Any, Any]] = []
    # The kernel's place in the map between calls: a bucket's index for a
    # hash, a key for other maps (BCC declares it a u32 pointer).
    room = ctypes.create_string_buffer(max(8, chunk.key_size))
    token = ctypes.cast(room, ctypes.POINTER(ctypes.c_uint32))
    count = ctypes.c_uint32(0)
    first = True
    while True:
        count.value = chunk.entries
        res = lib.bpf_lookup_batch(table.map_fd, None if first else token, token,
                                   chunk.keys, chunk.values, ctypes.byref(count))
        err = ctypes.get_errno()
        first = False
        keys, values = chunk.keys, chunk.values
        out.extend((_copy(keys[i]), _copy(values[i])) for i in range(count.value))
        if res != 0:
            if err == errno.ENOENT:
                return out  # the end of the map
            raise OSError(err, f"BPF_MAP_LOOKUP_BATCH on {table._name!r}: {os.strerror(err)}")
        if count.value == 0:
            return out


def items(table: Any) -> List[Tuple[Any, Any]]:
    """Every (key, value) of a map, in batches where the kernel can."""
    try:
        return _batch_items(table)
    except Exception:
        # Kernels before 5.6 have no batch lookups: one lookup per key.
        out = []
        for key in list(table.keys()):
            try:
                out.append((key, table[key]))
            except KeyError:
                pass  # deleted between listing and lookup
        return out


def items_beside_runs(table: Any, runs: Any, tries: int = 5) -> Tuple[List[Tuple[Any, Any]], List[Any]]:
    """A hash's items and each CPU's entry of ``runs``, a one-slot per-CPU
    array of counts the kernel has not yet moved into the hash, read so
    that they agree: a CPU that moves its counts while the hash is being
    read bumps the entry's ``switches``, and the read is retried (after
    ``tries``, the last read is returned)."""
    for _ in range(tries):
        before = [c.switches for c in runs.getvalue(0)]
        read = items(table)
        after = list(runs.getvalue(0))
        if before == [c.switches for c in after]:
            break
    return read, after


def drop_exited(table: Any, pids: Iterable[int], keep: Container[int] = ()) -> List[int]:
    """Delete the entries of processes that have exited (and are not in
    ``keep``) from a map keyed by pid; returns the pids dropped."""
    dropped = []
    for pid in procfs.exited(pid for pid in pids if pid not in keep):
        try:
            del table[table.Key(pid)]
        except KeyError:
            pass
        dropped.append(pid)
    return dropped


def key_int(key: Any) -> int:
    """A map key as an int (BCC hands scalar keys as ctypes values)."""
    return int(getattr(key, "value", key))


def percpu_total(table: Any, index: int = 0) -> int:
    """The sum over CPUs of one slot of a per-CPU array (a counter)."""
    return int(sum(table.getvalue(table.Key(index))))


def percpu_totals(table: Any) -> List[int]:
    """Every slot of a per-CPU array of u64 counters, each summed over the
    CPUs: one batch call (PerCpuArrayTotals, kept with the table) where a
    lookup per slot took one call each."""
    reader = getattr(table, "_bpftop_totals", None)
    if reader is None:
        reader = table._bpftop_totals = PerCpuArrayTotals(table)
    totals = reader.read()
    if totals is None:
        return [percpu_total(table, i) for i in range(reader.slots)]
    return totals["value"]


def sum_fields(values: Iterable[Any], fields: Sequence[str]) -> Tuple[int, ...]:
    """Per-CPU copies of one struct, each field summed over the CPUs."""
    totals = [0] * len(fields)
    for v in values:
        for i, name in enumerate(fields):
            totals[i] += getattr(v, name)
    return tuple(totals)


def comm(raw: bytes) -> str:
    """A task's comm (a NUL-padded char[16]) as text; bytes that are not
    UTF-8 stay visible as replacement characters."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class PerCpuArrayTotals:
    """Every slot of a per-CPU array whose values are all u64 fields, read
    with one batch call into buffers kept from read to read, and summed
    over CPUs per field.

    BCC's own batch read makes a ctypes object per slot and CPU, and
    summing them field by field cost the syscalls collector 3 ms a read
    for 513 slots (90% of its read); here the sums run over one
    memoryview. ``read`` returns None where the kernel has no batch
    lookup for arrays (before 5.6): then read the table as before.
    """

    def __init__(self, table: Any) -> None:
        leaf = table.sLeaf
        # A plain u64 counter is one field, "value".
        fields = getattr(leaf, "_fields_", None) or [("value", leaf)]
        self.fields = [f[0] for f in fields]
        if any(ctypes.sizeof(f[1]) != 8 for f in fields) or ctypes.sizeof(leaf) != 8 * len(self.fields):
            raise ValueError(f"{table._name!r}: only u64 counters are summed here")
        import bcc.libbcc

        self._lib = bcc.libbcc.lib
        self.table = table
        self.slots = int(table.max_entries)
        self.cpus = int(table.total_cpu)
        self._keys = (ctypes.c_uint32 * self.slots)()
        self._raw = bytearray(ctypes.sizeof(leaf) * self.cpus * self.slots)
        self._values = (ctypes.c_char * len(self._raw)).from_buffer(self._raw)
        self.unsupported = False

    def read(self) -> Optional[Dict[str, List[int]]]:
        """{field: [sum over CPUs, per slot]}, or None (see above)."""
        if self.unsupported:
            return None
        total = 0
        batch = ctypes.c_uint32(0)
        count = ctypes.c_uint32(0)
        key_size = ctypes.sizeof(ctypes.c_uint32)
        value_size = len(self._raw) // self.slots
        while total < self.slots:
            count.value = self.slots - total
            res = self._lib.bpf_lookup_batch(
                self.table.map_fd, ctypes.byref(batch) if total else None, ctypes.byref(batch),
                ctypes.byref(self._keys, key_size * total), ctypes.byref(self._values, value_size * total),
                ctypes.byref(count))
            err = ctypes.get_errno()
            total += count.value
            if res != 0:
                if err == errno.ENOENT:
                    break
                if err in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS) and not total:
                    self.unsupported = True
                    return None
                raise OSError(err, f"BPF_MAP_LOOKUP_BATCH on {self.table._name!r}: {os.strerror(err)}")
            if count.value == 0:
                break
        if total != self.slots:
            raise OSError(errno.EIO, f"BPF_MAP_LOOKUP_BATCH on {self.table._name!r} gave {total} of {self.slots} slots")
        words = memoryview(self._raw).cast("Q")
        nf, cpus = len(self.fields), self.cpus
        out = {}
        for i, name in enumerate(self.fields):
            column = words[i::nf]  # slot 0 CPU 0, slot 0 CPU 1, ..., slot 1 CPU 0, ...
            if cpus == 1:
                out[name] = column.tolist()
            else:
                out[name] = list(map(sum, zip(*(column[c::cpus].tolist() for c in range(cpus)))))
        return out
