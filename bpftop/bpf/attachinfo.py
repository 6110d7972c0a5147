"""What a BPF program is attached to, as the kernel tells it: a link's
type and target (BPF_OBJ_GET_INFO_BY_FD on a link), and the hook behind a
perf-event fd a process holds (BPF_TASK_FD_QUERY)."""

from __future__ import annotations

import ctypes
import socket
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .objinfo import (
    BPF_TASK_FD_QUERY,
    LINK_TYPES,
    PERF_EVENT_TYPES,
    TASK_FD_TYPES,
    BpfError,
    bpf,
    obj_info,
    type_name,
)


class _LinkInfo(ctypes.Structure):
    # struct bpf_link_info: type, id, prog_id, then a union (8-aligned) read
    # as words by link type.
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("prog_id", ctypes.c_uint32),
                ("pad", ctypes.c_uint32), ("u", ctypes.c_uint64 * 8)]


@dataclass(frozen=True)
class LinkInfo:
    id: int
    prog_id: int
    type: str
    # What the kernel says the link attaches to, "" when it says nothing.
    target: str


def _read_name(fd: int, kind: int, ptr_word: int, len_word: int) -> Tuple[str, Optional[_LinkInfo]]:
    """Ask again with a buffer for a name the link info points at."""
    buf = ctypes.create_string_buffer(256)
    info = _LinkInfo()
    info.u[ptr_word] = ctypes.addressof(buf)
    # The length is the low half of a 64-bit word (little-endian) or the high
    # half (big-endian); both halves are 32-bit fields of the union.
    words = ctypes.cast(ctypes.addressof(info.u), ctypes.POINTER(ctypes.c_uint32))
    words[len_word] = ctypes.sizeof(buf)
    if kind >= 0:
        words[0] = kind
    try:
        obj_info(fd, info)
    except BpfError:
        return "", None
    return buf.value.decode("utf-8", "replace"), info


def link_info(fd: int, ifnames: Optional[Dict[int, str]] = None) -> LinkInfo:
    info = _LinkInfo()
    obj_info(fd, info)
    kind = type_name(LINK_TYPES, info.type)
    words = ctypes.cast(ctypes.addressof(info.u), ctypes.POINTER(ctypes.c_uint32))
    target = ""
    if kind == "raw_tracepoint":
        # raw_tracepoint: { u64 tp_name; u32 tp_name_len; }
        target, _ = _read_name(fd, -1, 0, 2)
    elif kind == "perf_event":
        # perf_event: { u32 type; u32 pad; union { uprobe/kprobe/tracepoint:
        # { u64 name; u32 name_len; u32 offset; ... } } }
        ptype = type_name(PERF_EVENT_TYPES, words[0])
        if ptype in ("kprobe", "kretprobe", "uprobe", "uretprobe", "tracepoint"):
            name, _ = _read_name(fd, -1, 1, 4)
            target = f"{ptype} {name}" if name else ptype
        else:
            target = ptype
    elif kind in ("xdp", "tcx", "netkit"):
        ifindex = words[0]
        names = ifnames if ifnames is not None else interface_names()
        target = f"{names.get(ifindex, f'ifindex {ifindex}')}"
    elif kind == "cgroup":
        cgroup_id = words[0] | (words[1] << 32)
        target = f"cgroup id {cgroup_id}"
    elif kind == "netfilter":
        target = f"pf {words[0]} hook {words[1]} prio {ctypes.c_int32(words[2]).value}"
    return LinkInfo(info.id, info.prog_id, kind, target)


def interface_names() -> Dict[int, str]:
    try:
        return dict(socket.if_nameindex())
    except OSError:
        return {}


@dataclass(frozen=True)
class FdTarget:
    prog_id: int
    kind: str  # TASK_FD_TYPES
    name: str


def task_fd_query(pid: int, fd: int) -> Optional[FdTarget]:
    """What program process ``pid``'s fd ``fd`` (a perf event or a raw
    tracepoint link) runs and where it is attached (what ``bpftool perf``
    reads); None when it is no such fd."""
    buf = ctypes.create_string_buffer(256)
    attr = (ctypes.c_uint32 * 12)()
    attr[0], attr[1], attr[2], attr[3] = pid, fd, 0, ctypes.sizeof(buf)
    ptr = ctypes.addressof(buf)
    attr[4], attr[5] = ptr & 0xFFFFFFFF, ptr >> 32
    try:
        bpf(BPF_TASK_FD_QUERY, attr)
    except BpfError:
        return None
    return FdTarget(int(attr[6]), type_name(TASK_FD_TYPES, attr[7]), buf.value.decode("utf-8", "replace"))
