"""A BCC ``BPF`` object rebuilt from a cache entry instead of a compile.

``capture`` reads what BCC's compile produced: each function's
instructions, the maps they refer to (a 64-bit load of a map's fd), the
maps' shapes as the kernel reports them, the types BCC derived for their
keys and values, and the BTF BCC loaded for the programs.
``CachedBPF.restore`` makes the same maps, patches their new fds into the
instructions and loads a program (with its BTF function record, as BCC
does: progload.py) when one is asked for, exactly where BCC would; the
rest of BCC's ``BPF`` (attaching, ring and perf buffers, table reads,
cleanup) is BCC's own code, unchanged.

Only what this module can rebuild exactly is captured: maps of the plain
kinds (no BTF needed to create them), programs that refer to maps by fd
only, functions BCC attaches by the ``tracepoint__`` and
``raw_tracepoint__`` prefixes. Anything else is compiled every time, as
before. What the rebuilt objects look like is checked against what BCC's
own constructors made when the entry was written (their attribute
names), so a BCC whose tables carry more state than this knows of is
compiled for, not guessed at.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import json
import os
import struct
from typing import Any, Dict, List, Optional, Set, Tuple

from . import btf as btf_types
from . import objinfo, progload
from .objcache import b64, unb64

# Map types that need nothing but their sizes and flags to be made.
PLAIN_MAPS = frozenset({"hash", "array", "perf_event_array", "percpu_hash", "percpu_array", "lru_hash",
                        "lru_percpu_hash", "ringbuf"})
AUTOLOAD = {b"tracepoint__": "tracepoint", b"raw_tracepoint__": "raw_tracepoint"}
# Prefixes BCC's own loader would act on; a module with any other is not cached.
_OTHER_AUTOLOAD = (b"kprobe__", b"kretprobe__", b"kfunc__", b"kretfunc__", b"lsm__")

_LD_IMM64 = 0x18
_PSEUDO_MAP_FD = 1
_CALL = 0x85
_PSEUDO_CALL = 1
_INSN = struct.Struct("<BBhi")


class NotCacheable(Exception):
    pass


class _Lib:
    """The libbcc calls BCC's Python does not declare, on a handle of our
    own so that BCC's declarations are untouched."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path, use_errno=True)
        lib.bpf_num_tables.restype = ctypes.c_size_t
        lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
        lib.bpf_table_name.restype = ctypes.c_char_p
        lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.bcc_create_map.restype = ctypes.c_int
        lib.bcc_create_map.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                       ctypes.c_int]
        self.lib = lib


_own: Optional[_Lib] = None


def _lib(bcc: Any) -> Any:
    global _own
    if _own is None:
        _own = _Lib(bcc.libbcc.lib._name)
    return _own.lib


def _walk(code: bytes, fds: Dict[int, int]) -> Tuple[List[Tuple[int, int]], bool]:
    """One pass over a program: (instruction index, map index) of every
    load of a map's fd, and whether it calls a function of its own (a
    BPF-to-BPF call, whose BTF record would need one entry per function).
    Raises NotCacheable for any other kind of 64-bit load that names an
    object."""
    refs = []
    calls = False
    i = 0
    count = len(code) // _INSN.size
    while i < count:
        op, regs, _, imm = _INSN.unpack_from(code, i * _INSN.size)
        src = regs >> 4
        if op == _LD_IMM64:
            if src == _PSEUDO_MAP_FD:
                if imm not in fds:
                    raise NotCacheable(f"instruction {i} refers to fd {imm}, not one of the module's maps")
                refs.append((i, fds[imm]))
            elif src != 0:
                raise NotCacheable(f"instruction {i} is a 64-bit load of kind {src}")
            i += 2
            continue
        calls = calls or (op == _CALL and src == _PSEUDO_CALL)
        i += 1
    return refs, calls


def btf_fds() -> Set[int]:
    """This process's open BTF objects (BCC loads one per compile)."""
    out = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:btf":
                out.add(int(name))
        except OSError:
            pass
    return out


def capture(bcc: Any, bpf: Any, btf_fd: Optional[int] = None) -> Dict[str, Any]:
    """What a freshly compiled BPF object needs to be rebuilt; raises
    NotCacheable when it holds something ``restore`` cannot rebuild.
    ``btf_fd`` is the BTF object BCC loaded for it, if it did."""
    own = _lib(bcc)
    lib = bcc.libbcc.lib
    module = bpf.module
    maps: List[Dict[str, Any]] = []
    fds: Dict[int, int] = {}
    for i in range(own.bpf_num_tables(module)):
        name = own.bpf_table_name(module, i)
        fd = lib.bpf_table_fd(module, name)
        info = objinfo.map_info(fd)
        if info.type not in PLAIN_MAPS:
            raise NotCacheable(f"map {name.decode()} is a {info.type}")
        map_id = lib.bpf_table_id(module, name)
        table = bpf[name]
        maps.append({
            "name": name.decode(),
            "type": objinfo.MAP_TYPES.index(info.type),
            "key_size": info.key_size,
            "value_size": info.value_size,
            "max_entries": info.max_entries,
            "map_flags": info.map_flags,
            "bcc_type": lib.bpf_table_type_id(module, map_id),
            "bcc_flags": lib.bpf_table_flags_id(module, map_id),
            "bcc_max_entries": int(lib.bpf_table_max_entries_id(module, map_id)),
            "key_desc": lib.bpf_table_key_desc(module, name).decode(),
            "leaf_desc": lib.bpf_table_leaf_desc(module, name).decode(),
            "class": type(table).__name__,
            "attrs": sorted(vars(table)),
        })
        fds[fd] = len(maps) - 1
    functions = []
    subprograms = set()
    for i in range(lib.bpf_num_functions(module)):
        name = lib.bpf_function_name(module, i)
        if name.startswith(_OTHER_AUTOLOAD):
            raise NotCacheable(f"function {name.decode()} is attached by a prefix this cache does not replay")
        size = lib.bpf_function_size(module, name)
        code = ctypes.string_at(lib.bpf_function_start(module, name), size)
        refs, calls = _walk(code, fds)
        if calls:
            subprograms.add(name)
        functions.append({"name": name.decode(), "code": b64(code), "maps": refs})
    attached = set(bpf.tracepoint_fds) | set(bpf.raw_tracepoint_fds)
    if bpf.kprobe_fds or bpf.uprobe_fds or len(attached) != sum(
            1 for f in functions if f["name"].encode().startswith(tuple(AUTOLOAD))):
        raise NotCacheable("it was attached to more than its prefixed functions when captured")
    btf = progload.btf_bytes(btf_fd) if btf_fd is not None else b""
    ids = btf_types.func_ids(btf, [f["name"].encode() for f in functions]) if btf else {}
    for f in functions:
        name = f["name"].encode()
        f["btf_func"] = 0 if name in subprograms else ids.get(name, 0)
    return {
        "btf": b64(btf),
        "license": lib.bpf_module_license(module).decode(),
        "kern_version": int(lib.bpf_module_kern_version(module)),
        "bpf_attrs": sorted(vars(bpf)),
        "maps": maps,
        "functions": functions,
    }


def _table_class(bcc: Any, name: str) -> type:
    """One of BCC's table classes with TableBase's constructor replaced by
    one that takes the shape from the entry, not from a compiled module:
    the class's own constructor (per-CPU leaves, ring buffer state) runs
    as BCC wrote it."""
    base = getattr(bcc.table, name)
    if not isinstance(base, type) or not issubclass(base, bcc.table.TableBase):
        raise NotCacheable(f"{name} is not a BCC table class")
    cached = _CACHED_CLASSES.get((id(bcc), name))
    if cached is None:
        table_base = bcc.table.TableBase

        class Shape(table_base):  # type: ignore[misc, valid-type]
            def __init__(self, bpf: Any, map_id: int, map_fd: int, keytype: Any, leaftype: Any,
                         name: Optional[bytes] = None) -> None:
                meta = bpf._entry_maps[map_id]
                self.bpf = bpf
                self.map_id = map_id
                self.map_fd = map_fd
                self.Key = keytype
                self.Leaf = leaftype
                self.ttype = meta["bcc_type"]
                self.flags = meta["bcc_flags"]
                self._cbs: Dict[Any, Any] = {}
                self._name = name
                self.max_entries = meta["bcc_max_entries"]

        cached = type(name, (base, Shape), {})
        _CACHED_CLASSES[(id(bcc), name)] = cached
    return cached


_CACHED_CLASSES: Dict[Tuple[int, str], type] = {}


def make_class(bcc: Any) -> type:
    """``CachedBPF``, a subclass of this BCC's ``BPF``."""

    class CachedBPF(bcc.BPF):
        _entry: Dict[str, Any]
        _entry_maps: List[Dict[str, Any]]
        _map_fds: List[int]
        _prebuilt: Dict[bytes, Any]
        _btf_fd: Optional[int]

        @classmethod
        def restore(cls, entry: Dict[str, Any]) -> CachedBPF:
            self = cls.__new__(cls)
            self.kprobe_fds = {}
            self.uprobe_fds = {}
            self.tracepoint_fds = {}
            self.raw_tracepoint_fds = {}
            self.kfunc_entry_fds = {}
            self.kfunc_exit_fds = {}
            self.lsm_fds = {}
            self.perf_buffers = {}
            self.open_perf_events = {}
            self._ringbuf_manager = None
            self.tracefile = None
            self.debug = 0
            self.funcs = {}
            self.tables = {}
            self.module = None
            self._entry = entry
            self._entry_maps = entry["maps"]
            self._map_fds = []
            self._btf_fd = None
            self._code = {f["name"].encode(): f for f in entry["functions"]}
            mine = {"_entry", "_entry_maps", "_map_fds", "_btf_fd", "_code", "_prebuilt"}
            if sorted(set(vars(self)) - mine) != entry["bpf_attrs"]:
                raise NotCacheable("this BCC's BPF object holds other state than the entry's")
            atexit.register(self.cleanup)
            try:
                btf = unb64(entry["btf"])
                if btf:
                    try:
                        self._btf_fd = progload.load_btf(btf)
                    except OSError:
                        pass  # as BCC: the programs load without their BTF
                self._make_maps(bcc)
                self._prebuilt = {m["name"].encode(): self._make_table(bcc, i) for i, m in enumerate(self._entry_maps)}
                self._autoload()
            except BaseException:
                self.cleanup()
                raise
            return self

        def _make_maps(self, bcc: Any) -> None:
            own = _lib(bcc)
            for meta in self._entry_maps:
                fd = own.bcc_create_map(meta["type"], meta["name"].encode(), meta["key_size"], meta["value_size"],
                                        meta["max_entries"], meta["map_flags"])
                if fd < 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"could not create map {meta['name']}: {os.strerror(err)}")
                self._map_fds.append(fd)

        def _make_table(self, bcc: Any, index: int) -> Any:
            meta = self._entry_maps[index]
            keytype = bcc.BPF._decode_table_type(json.loads(meta["key_desc"]))
            leaftype = bcc.BPF._decode_table_type(json.loads(meta["leaf_desc"]))
            cls = _table_class(bcc, meta["class"])
            name = meta["name"].encode()
            if issubclass(cls, (bcc.table.PerfEventArray, bcc.table.RingBuf)):
                table = cls(self, index, self._map_fds[index], keytype, leaftype, name)
            else:
                table = cls(self, index, self._map_fds[index], keytype, leaftype)
            if sorted(vars(table)) != meta["attrs"]:
                raise NotCacheable(f"table {meta['name']} holds other state than when it was cached")
            return table

        def _autoload(self) -> None:
            for f in self._entry["functions"]:
                name = f["name"].encode()
                if name.startswith(b"tracepoint__"):
                    tp = name[len(b"tracepoint__"):].replace(b"__", b":")
                    self.attach_tracepoint(tp=tp, fn_name=name)
                elif name.startswith(b"raw_tracepoint__"):
                    self.attach_raw_tracepoint(tp=name[len(b"raw_tracepoint__"):], fn_name=name)

        def load_func(self, func_name: Any, prog_type: int, device: Any = None, attach_type: int = -1) -> Any:
            func_name = func_name if isinstance(func_name, bytes) else str(func_name).encode()
            if func_name in self.funcs:
                return self.funcs[func_name]
            f = self._code.get(func_name)
            if f is None:
                raise Exception(f"Unknown program {func_name!r}")
            if device is not None or attach_type != -1:
                raise Exception(f"program {func_name!r}: a device or attach type is not replayed from the cache")
            try:
                fd = progload.load_program(prog_type, func_name, self.dump_func(func_name),
                                           self._entry["license"].encode(), self._entry["kern_version"],
                                           self._btf_fd, f["btf_func"])
            except OSError as e:
                if e.errno == errno.EPERM:
                    raise Exception("Need super-user privileges to run") from None
                raise Exception(f"Failed to load BPF program {func_name!r}: {os.strerror(e.errno or 0)}") from None
            fn = bcc.BPF.Function(self, func_name, fd)
            self.funcs[func_name] = fn
            return fn

        def get_table(self, name: Any, keytype: Any = None, leaftype: Any = None, reducer: Any = None) -> Any:
            name = name if isinstance(name, bytes) else str(name).encode()
            if keytype is not None or leaftype is not None or reducer is not None:
                raise Exception(f"table {name!r}: other key or leaf types are not replayed from the cache")
            if name not in self._prebuilt:
                raise KeyError(name)
            return self._prebuilt[name]

        def close(self) -> None:
            super().close()
            # BCC lets a perf buffer's table go when cleanup drops it from
            # self.tables, and its __del__ closes the per-CPU buffers
            # while the map is still open; this object's own reference
            # would delay that until after the map is closed.
            for table in getattr(self, "_prebuilt", {}).values():
                if isinstance(table, bcc.table.PerfEventArray):
                    for key in list(table._open_key_fds):
                        del table[key]
            self._prebuilt = {}
            fds, self._map_fds = self._map_fds, []
            btf_fd, self._btf_fd = getattr(self, "_btf_fd", None), None
            if btf_fd is not None:
                fds.append(btf_fd)
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass

        def dump_func(self, func_name: Any) -> bytes:
            """The function's instructions with this object's map fds in
            them, as BCC's gives a compiled one's (ready to load)."""
            func_name = func_name if isinstance(func_name, bytes) else str(func_name).encode()
            f = self._code[func_name]
            code = bytearray(unb64(f["code"]))
            for insn, index in f["maps"]:
                struct.pack_into("<i", code, insn * _INSN.size + 4, self._map_fds[index])
            return bytes(code)

    return CachedBPF


_classes: Dict[int, type] = {}


def restore(bcc: Any, entry: Dict[str, Any]) -> Any:
    cls = _classes.get(id(bcc))
    if cls is None:
        cls = _classes[id(bcc)] = make_class(bcc)
    return cls.restore(entry)  # type: ignore[attr-defined]
