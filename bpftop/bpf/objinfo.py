"""The kernel's own list of BPF objects, read through the bpf(2) system call:
every loaded program, map and link by id, and the information the kernel
keeps on each (BPF_OBJ_GET_INFO_BY_FD).

BCC's Python bindings have no wrappers for these commands, and bpftool
would be a process per interval; the calls are few and their structures
are fixed by the kernel ABI (fields are only ever appended, and the kernel
says in ``info_len`` how much of a structure it filled, so a field past
that length is "this kernel does not say", never 0).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import platform
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

from .stats import SYS_BPF

# enum bpf_cmd
BPF_MAP_GET_NEXT_KEY = 4
BPF_MAP_LOOKUP_BATCH = 24
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET = 7
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_TASK_FD_QUERY = 20
BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_GET_NEXT_ID = 31

BPF_F_NO_PREALLOC = 1 << 0
BPF_F_RDONLY = 1 << 3

PROG_TYPES = (
    "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
    "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb", "cgroup_device",
    "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2", "sk_reuseport",
    "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops",
    "ext", "lsm", "sk_lookup", "syscall", "netfilter",
)
MAP_TYPES = (
    "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array", "stack_trace",
    "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps", "hash_of_maps", "devmap",
    "sockmap", "cpumap", "xskmap", "sockhash", "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage",
    "queue", "stack", "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage", "task_storage",
    "bloom_filter", "user_ringbuf", "cgrp_storage", "arena",
)
LINK_TYPES = (
    "unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event", "kprobe_multi",
    "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap",
)
# enum bpf_perf_event_type (a perf_event link's kind)
PERF_EVENT_TYPES = ("unspec", "uprobe", "uretprobe", "kprobe", "kretprobe", "tracepoint", "event")
# enum bpf_task_fd_type (what BPF_TASK_FD_QUERY says an fd attaches to)
TASK_FD_TYPES = ("raw_tracepoint", "tracepoint", "kprobe", "kretprobe", "uprobe", "uretprobe")

# Map types whose entries are there from creation: their count is max_entries.
ARRAY_MAPS = frozenset({"array", "percpu_array", "prog_array", "cgroup_array", "array_of_maps"})
# Map types whose keys BPF_MAP_GET_NEXT_KEY walks, so their entries can be counted.
KEYED_MAPS = frozenset({"hash", "percpu_hash", "lru_hash", "lru_percpu_hash", "lpm_trie", "hash_of_maps",
                        "devmap_hash", "sockhash"})


def type_name(names: Tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else f"type {value}"


class BpfError(OSError):
    pass


class _Syscall:
    """bpf(2) through libc's syscall(), with errno kept."""

    def __init__(self) -> None:
        self.nr = SYS_BPF.get(platform.machine())
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def __call__(self, cmd: int, attr: ctypes.Array) -> int:
        if self.nr is None:
            raise BpfError(errno.ENOSYS, f"no bpf(2) number known for {platform.machine()}")
        ret = int(self.libc.syscall(self.nr, cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
        if ret < 0:
            err = ctypes.get_errno()
            raise BpfError(err, os.strerror(err))
        return ret


_sys: Optional[_Syscall] = None


def bpf(cmd: int, attr: ctypes.Array) -> int:
    global _sys
    if _sys is None:
        _sys = _Syscall()
    return _sys(cmd, attr)


def new_attr() -> ctypes.Array:
    # Larger than any member of union bpf_attr used here; the rest stays 0,
    # which the kernel requires of the bytes a command does not use.
    return (ctypes.c_uint32 * 16)()


def next_ids(cmd: int) -> Iterator[int]:
    """Every id the kernel has for one kind of object, in order."""
    current = 0
    while True:
        attr = new_attr()
        attr[0] = current
        try:
            bpf(cmd, attr)
        except BpfError as e:
            if e.errno == errno.ENOENT:
                return
            raise
        current = attr[1]
        yield current


def fd_by_id(cmd: int, obj_id: int, flags: int = 0) -> Optional[int]:
    """A new fd for object ``obj_id``; None when it went away meanwhile."""
    attr = new_attr()
    attr[0] = obj_id
    attr[2] = flags
    try:
        fd = bpf(cmd, attr)
    except BpfError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    # Marked as a reader's fd (O_NONBLOCK, which bpf fds ignore, shows in
    # its fdinfo flags): whoever looks for the processes holding a program
    # (bpftop's tests, other tools) can tell this brief look from a hold.
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
    return fd


def obj_get(path: str) -> Optional[int]:
    """An fd for the object pinned at ``path`` (a bpffs file), marked as a
    reader's like fd_by_id's; None when it is not one."""
    name = ctypes.create_string_buffer(os.fsencode(path))
    attr = new_attr()
    ptr = ctypes.addressof(name)
    attr[0], attr[1] = ptr & 0xFFFFFFFF, ptr >> 32
    try:
        fd = bpf(BPF_OBJ_GET, attr)
    except BpfError:
        return None
    fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
    return fd


def obj_info(fd: int, buf: ctypes.Structure) -> int:
    """Fill ``buf`` with the object's info; returns how many bytes the kernel filled."""
    attr = new_attr()
    attr[0] = fd
    attr[1] = ctypes.sizeof(buf)
    ptr = ctypes.addressof(buf)
    attr[2], attr[3] = ptr & 0xFFFFFFFF, ptr >> 32
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return int(attr[1])


class _ProgInfo(ctypes.Structure):
    # struct bpf_prog_info (include/uapi/linux/bpf.h), up to attach_btf_id.
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32), ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64), ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32), ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32), ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64), ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32), ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32), ("nr_line_info", ctypes.c_uint32), ("line_info", ctypes.c_uint64),
        ("jited_line_info", ctypes.c_uint64), ("nr_jited_line_info", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32), ("jited_line_info_rec_size", ctypes.c_uint32),
        ("nr_prog_tags", ctypes.c_uint32), ("prog_tags", ctypes.c_uint64),
        ("run_time_ns", ctypes.c_uint64), ("run_cnt", ctypes.c_uint64), ("recursion_misses", ctypes.c_uint64),
        ("verified_insns", ctypes.c_uint32), ("attach_btf_obj_id", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
    ]


class _MapInfo(ctypes.Structure):
    # struct bpf_map_info, up to map_extra.
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32), ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64), ("btf_id", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32), ("btf_value_type_id", ctypes.c_uint32), ("pad", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


def _end(field: ctypes._CField) -> int:
    return int(field.offset + field.size)


@dataclass(frozen=True)
class ProgInfo:
    id: int
    type: str
    name: str
    tag: str
    load_time_ns: int  # ns since boot
    uid: int
    xlated_bytes: int
    jited_bytes: int
    map_ids: Tuple[int, ...]
    # None: this kernel's program info has no such field.
    run_cnt: Optional[int]
    run_time_ns: Optional[int]
    recursion_misses: Optional[int]
    verified_insns: Optional[int]


# Map ids a program's info is first asked for: the kernel fills at most
# this many and says how many the program has, so one call is enough for
# nearly every program (the BPF tab asks for each one every interval).
MAP_ROOM = 64


def prog_info(fd: int) -> ProgInfo:
    info = _ProgInfo()
    ids = (ctypes.c_uint32 * MAP_ROOM)()
    info.nr_map_ids = MAP_ROOM
    info.map_ids = ctypes.addressof(ids)
    filled = obj_info(fd, info)
    count = info.nr_map_ids
    map_ids = tuple(ids[: min(count, MAP_ROOM)])
    if count > MAP_ROOM:
        more = (ctypes.c_uint32 * count)()
        again = _ProgInfo()
        again.nr_map_ids = count
        again.map_ids = ctypes.addressof(more)
        obj_info(fd, again)
        map_ids = tuple(more[: min(count, again.nr_map_ids)])

    def present(name: str) -> bool:
        return filled >= _end(getattr(_ProgInfo, name))

    return ProgInfo(
        id=info.id,
        type=type_name(PROG_TYPES, info.type),
        name=info.name.decode("utf-8", "replace"),
        tag=bytes(info.tag).hex(),
        load_time_ns=info.load_time,
        uid=info.created_by_uid,
        xlated_bytes=info.xlated_prog_len,
        jited_bytes=info.jited_prog_len,
        map_ids=map_ids,
        run_cnt=info.run_cnt if present("run_cnt") else None,
        run_time_ns=info.run_time_ns if present("run_time_ns") else None,
        recursion_misses=info.recursion_misses if present("recursion_misses") else None,
        # 0 is what a kernel that counts them never reports for a loaded program.
        verified_insns=info.verified_insns if present("verified_insns") and info.verified_insns else None,
    )


def prog_counters(fd: int) -> Tuple[int, int, int, Optional[int]]:
    """(id, run_cnt, run_time_ns, recursion_misses: None where the kernel
    does not count them) of the program behind ``fd``: one call, no map ids
    asked for. BpfError where the kernel's info has no run counters."""
    info = _ProgInfo()
    filled = obj_info(fd, info)
    if filled < _end(_ProgInfo.run_cnt):
        raise BpfError(errno.ENOTSUP, "no run counters in this kernel's program info")
    misses = info.recursion_misses if filled >= _end(_ProgInfo.recursion_misses) else None
    return info.id, info.run_cnt, info.run_time_ns, misses


@dataclass(frozen=True)
class MapInfo:
    id: int
    type: str
    name: str
    key_size: int
    value_size: int
    max_entries: int
    memlock: Optional[int]  # bytes, from the map fd's fdinfo
    map_flags: int = 0

    @property
    def fixed_size(self) -> bool:
        """Whether its memory is all allocated at creation, so memlock
        cannot change: every map but those made with BPF_F_NO_PREALLOC
        (and LPM tries, which always are)."""
        return not self.map_flags & BPF_F_NO_PREALLOC and self.type != "lpm_trie"


def fdinfo_fields(path: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    obj_info(fd, info)
    memlock = fdinfo_fields(f"/proc/self/fdinfo/{fd}").get("memlock", "")
    return MapInfo(
        id=info.id,
        type=type_name(MAP_TYPES, info.type),
        name=info.name.decode("utf-8", "replace"),
        key_size=info.key_size,
        value_size=info.value_size,
        max_entries=info.max_entries,
        memlock=int(memlock) if memlock.isdigit() else None,
        map_flags=info.map_flags,
    )
