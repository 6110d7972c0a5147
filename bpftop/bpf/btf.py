"""Offsets of kernel struct members from the running kernel's own BTF.

Programs that read kernel structs through a pointer (raw tracepoints get
``struct request *``) must not trust the installed headers, which may be
another kernel's. The running kernel describes its own layout in
``/sys/kernel/btf/vmlinux``; libbpf (a dependency of BCC) parses it. The
offsets reach the BPF C source as typed ``-D`` integers, like every other
value: no text from here becomes C.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Dict, Iterator, List, Optional, Tuple

from .. import errors

VMLINUX = "/sys/kernel/btf/vmlinux"

_KIND_INT, _KIND_PTR, _KIND_STRUCT, _KIND_UNION, _KIND_ENUM = 1, 2, 4, 5, 6
_KIND_TYPEDEF, _KIND_FUNC, _KIND_FUNC_PROTO, _KIND_ENUM64 = 8, 12, 13, 19


class BtfError(errors.FeatureError):
    pass


class _Type(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size", ctypes.c_uint32)]


class _Member(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32), ("offset", ctypes.c_uint32)]


class _Param(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32)]


class _Enum(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("val", ctypes.c_int32)]


class _Enum64(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("lo", ctypes.c_uint32), ("hi", ctypes.c_uint32)]


def _libbpf() -> ctypes.CDLL:
    for name in ("libbpf.so.1", ctypes.util.find_library("bpf") or "", "libbpf.so.0"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.btf__parse.restype = ctypes.c_void_p
        lib.btf__parse.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.btf__find_by_name_kind.restype = ctypes.c_int
        lib.btf__find_by_name_kind.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__type_by_id.restype = ctypes.POINTER(_Type)
        lib.btf__type_by_id.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__name_by_offset.restype = ctypes.c_char_p
        lib.btf__name_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__resolve_type.restype = ctypes.c_int
        lib.btf__resolve_type.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__resolve_size.restype = ctypes.c_int64
        lib.btf__resolve_size.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__free.restype = None
        lib.btf__free.argtypes = [ctypes.c_void_p]
        return lib
    raise BtfError("libbpf is not installed (it comes with the distribution's BCC packages)")


class Btf:
    """The running kernel's types; ask for member offsets and enum values."""

    def __init__(self, path: str = VMLINUX) -> None:
        self._lib = _libbpf()
        handle = self._lib.btf__parse(path.encode(), None)
        # libbpf 1.x returns NULL with errno set, 0.x an error pointer.
        if not handle or handle > 2**64 - 4096:
            raise BtfError(f"cannot read the kernel's BTF ({path})")
        self._btf = handle

    def close(self) -> None:
        if self._btf:
            self._lib.btf__free(self._btf)
            self._btf = None

    def _type(self, tid: int) -> _Type:
        t: _Type = self._lib.btf__type_by_id(self._btf, tid).contents
        return t

    def _kind(self, tid: int) -> int:
        return int(self._type(tid).info >> 24) & 0x1F

    def _name(self, off: int) -> str:
        raw = self._lib.btf__name_by_offset(self._btf, off)
        return raw.decode() if raw else ""

    def _members(self, tid: int) -> Iterator[Tuple[str, int, int]]:
        t = self._type(tid)
        vlen = t.info & 0xFFFF
        kflag = t.info >> 31
        base = ctypes.addressof(t) + ctypes.sizeof(_Type)
        for i in range(vlen):
            m = _Member.from_address(base + i * ctypes.sizeof(_Member))
            bits = m.offset & 0xFFFFFF if kflag else m.offset
            yield self._name(m.name_off), m.type, bits

    def _find(self, tid: int, name: str, base_bits: int = 0) -> Optional[Tuple[int, int]]:
        """(bit offset, type id) of ``name`` in the struct/union ``tid``,
        looking through anonymous members as C does."""
        for mname, mtype, bits in self._members(tid):
            if mname == name:
                return base_bits + bits, mtype
            if not mname:
                inner = self._lib.btf__resolve_type(self._btf, mtype)
                if inner > 0 and self._kind(inner) in (_KIND_STRUCT, _KIND_UNION):
                    found = self._find(inner, name, base_bits + bits)
                    if found:
                        return found
        return None

    def member(self, struct: str, name: str) -> Optional[Tuple[int, int]]:
        """(byte offset, byte size) of ``struct.name`` (``name`` may be a
        dotted path through named members), None when the kernel's struct
        has no such member (or no such struct)."""
        tid = self._lib.btf__find_by_name_kind(self._btf, struct.encode(), _KIND_STRUCT)
        if tid <= 0:
            return None
        bits = 0
        found = None
        for i, part in enumerate(name.split(".")):
            found = self._find(tid, part, bits)
            if found is None:
                return None
            bits, mtype = found
            tid = self._lib.btf__resolve_type(self._btf, mtype)
            compound = tid > 0 and self._kind(tid) in (_KIND_STRUCT, _KIND_UNION)
            if i < name.count(".") and not compound:
                return None
        if bits % 8:
            return None  # a bit field: not read through a byte offset
        size = self._lib.btf__resolve_size(self._btf, mtype)
        return bits // 8, int(size)

    def _type_name(self, tid: int) -> str:
        """``pgoff_t``, ``long unsigned int``, ``address_space *``: a
        typedef's, an integer's or a struct's name, with one `` *`` per
        pointer; "?" for anything else."""
        if tid <= 0:
            return "?"
        t, kind = self._type(tid), self._kind(tid)
        if kind == _KIND_PTR:
            return self._type_name(t.size) + " *"  # a pointer's size field is its target's id
        if kind in (_KIND_INT, _KIND_TYPEDEF, _KIND_STRUCT, _KIND_UNION):
            return self._name(t.name_off)
        return "?"

    def typedef_id(self, name: str) -> Optional[int]:
        tid = int(self._lib.btf__find_by_name_kind(self._btf, name.encode(), _KIND_TYPEDEF))
        return tid if tid > 0 else None

    def raw_tracepoint_args(self, event: str) -> Optional[Tuple[str, ...]]:
        """The types of what the raw tracepoint ``event`` passes (its
        TP_PROTO), from the kernel's ``btf_trace_<event>`` typedef; None
        when the kernel does not describe it."""
        tid = self.typedef_id(f"btf_trace_{event}")
        if tid is None:
            return None
        target = self._type(tid).size  # a typedef's size field is its target's id, as a pointer's
        proto_id = self._type(target).size if self._kind(target) == _KIND_PTR else 0
        if proto_id <= 0 or self._kind(proto_id) != _KIND_FUNC_PROTO:
            return None
        proto = self._type(proto_id)
        base = ctypes.addressof(proto) + ctypes.sizeof(_Type)
        params = [_Param.from_address(base + i * ctypes.sizeof(_Param)) for i in range(proto.info & 0xFFFF)]
        # The first is the tracepoint's own data pointer, not an argument.
        return tuple(self._type_name(p.type) for p in params[1:])

    def enum_value(self, enum: str, name: str) -> Optional[int]:
        for kind in (_KIND_ENUM, _KIND_ENUM64):
            tid = self._lib.btf__find_by_name_kind(self._btf, enum.encode(), kind)
            if tid <= 0:
                continue
            t = self._type(tid)
            base = ctypes.addressof(t) + ctypes.sizeof(_Type)
            for i in range(t.info & 0xFFFF):
                if kind == _KIND_ENUM:
                    e = _Enum.from_address(base + i * ctypes.sizeof(_Enum))
                    value, name_off = e.val, e.name_off
                else:
                    e64 = _Enum64.from_address(base + i * ctypes.sizeof(_Enum64))
                    value, name_off = e64.hi << 32 | e64.lo, e64.name_off
                if self._name(name_off) == name:
                    return int(value)
        return None


_cache: Dict[Tuple[str, str], Optional[Tuple[int, int]]] = {}
_cache_lock = threading.Lock()


def members(wanted: Tuple[Tuple[str, str], ...]) -> Dict[Tuple[str, str], Optional[Tuple[int, int]]]:
    """(byte offset, size) or None for each (struct, member); read once."""
    with _cache_lock:
        missing = [w for w in wanted if w not in _cache]
        if missing:
            btf = Btf()
            try:
                for struct, name in missing:
                    _cache[(struct, name)] = btf.member(struct, name)
            finally:
                btf.close()
        return {w: _cache[w] for w in wanted}


_typedefs: Dict[str, Optional[int]] = {}


def typedef_ids(wanted: Tuple[str, ...]) -> Dict[str, Optional[int]]:
    """The type id or None of each typedef name; read once, all the names
    missing so far from one parse of the kernel's BTF."""
    with _cache_lock:
        missing = [w for w in wanted if w not in _typedefs]
        if missing:
            btf = Btf()
            try:
                for name in missing:
                    _typedefs[name] = btf.typedef_id(name)
            finally:
                btf.close()
        return {w: _typedefs[w] for w in wanted}


def tracepoint_skips_counted() -> bool:
    """Whether the kernel counts the runs of classic tracepoint and kprobe
    programs that its recursion guard skipped. It always skipped them; it
    counts them since the change that also gave kprobe links their
    ``missed`` figure (Linux 6.7), which is what is looked for. Raw
    tracepoint programs are either counted (their own guard, 6.2+) or never
    skipped (no guard before), so their figure always holds."""
    try:
        found = members((("bpf_link_info", "kprobe_multi.missed"),))
    except BtfError:
        return False
    return found[("bpf_link_info", "kprobe_multi.missed")] is not None


def func_ids(raw: bytes, names: List[bytes]) -> Dict[bytes, int]:
    """The FUNC type id of each of ``names`` in the raw BTF ``raw`` (a
    compiled program's own BTF, not the kernel's); names it lacks are left
    out."""
    lib = _libbpf()
    lib.btf__new.restype = ctypes.c_void_p
    lib.btf__new.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    data = ctypes.create_string_buffer(raw, len(raw))
    handle = lib.btf__new(data, len(raw))
    if not handle or handle > 2**64 - 4096:  # NULL (libbpf 1.x) or an error pointer (0.x)
        return {}
    try:
        out = {}
        for name in names:
            tid = lib.btf__find_by_name_kind(handle, name, _KIND_FUNC)
            if tid > 0:
                out[name] = tid
        return out
    finally:
        lib.btf__free(handle)
