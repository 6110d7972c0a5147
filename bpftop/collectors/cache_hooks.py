"""Which page-cache hooks this kernel has: kernel function names for the
kprobe and fentry rungs, tracepoint fields for the tracepoint rung.

Plain file reads (kallsyms, tracefs formats); BCC is not imported here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Sequence, Set, Tuple

from ..bpf import system

# role -> candidate kernel functions, newest name first. The index (1, 2)
# is what the fentry rung's -D flag selects.
ROLES: Dict[str, Tuple[str, ...]] = {
    "access": ("folio_mark_accessed", "mark_page_accessed"),
    "add": ("filemap_add_folio", "add_to_page_cache_lru"),
    "dirtied": ("folio_account_dirtied", "account_page_dirtied"),
    "bufdirty": ("mark_buffer_dirty",),
}
system.want_symbols(name for names in ROLES.values() for name in names)
# role -> the BPF function the kprobe rung attaches there
KPROBE_FN = {
    "access": "bpftop_ca_access",
    "add": "bpftop_ca_add",
    "dirtied": "bpftop_ca_dirtied",
    "bufdirty": "bpftop_ca_bufdirty",
}
DEFINE_FOR_ROLE = {"access": "ACCESS_FN", "add": "ADD_FN", "dirtied": "DIRTY_FN"}


@dataclass(frozen=True)
class FunctionChoice:
    """For each role, the kernel function to hook (None: none exists).

    ``dirty_tracepoint`` names the writeback tracepoint that stands in for
    the dirtied-page function when that one is inlined (it fires inside
    folio_account_dirtied, once per call), or is "" when there is none.
    """

    chosen: Dict[str, Optional[str]]
    dirty_tracepoint: str = ""

    @property
    def dirty_via_tracepoint(self) -> bool:
        return self.chosen.get("dirtied") is None and bool(self.dirty_tracepoint)

    def missing(self) -> str:
        """Why the choice cannot work, or "" when every role has a hook."""
        gone = [
            r for r, fn in self.chosen.items()
            if fn is None and not (r == "dirtied" and self.dirty_tracepoint)
        ]
        if not gone:
            return ""
        return "; ".join(
            f"no kernel function for {role} ({' / '.join(ROLES[role])} not in /proc/kallsyms: renamed or inlined)"
            for role in gone
        )

    def defines(self) -> Dict[str, int]:
        """Typed -D flags naming the fentry targets (1 = first candidate)."""
        out = {}
        for role, define in DEFINE_FOR_ROLE.items():
            fn = self.chosen.get(role)
            out[define] = ROLES[role].index(fn) + 1 if fn else 1
        return out

    def defines_for_dirty(self) -> Dict[str, int]:
        if not self.dirty_via_tracepoint:
            return {}
        return {"DIRTY_VIA_TP": 1, "DIRTY_TP_FOLIO": int(self.dirty_tracepoint.endswith("folio"))}

    def hooks(self) -> Tuple[str, ...]:
        out = []
        for role, fn in self.chosen.items():
            if fn:
                out.append(fn)
            elif role == "dirtied" and self.dirty_tracepoint:
                out.append(self.dirty_tracepoint + " (" + " / ".join(ROLES[role]) + " inlined)")
            else:
                out.append(f"({role}: none)")
        return tuple(out)


def choose_functions(
    present: Callable[[Iterable[str]], Set[str]] = system.kernel_symbols,
    tracepoint: Optional[Callable[[str, str], bool]] = None,
) -> FunctionChoice:
    have = present([name for names in ROLES.values() for name in names])
    chosen = {role: next((n for n in names if n in have), None) for role, names in ROLES.items()}
    dirty_tp = ""
    if chosen["dirtied"] is None:
        exists = tracepoint or _tracepoint_exists
        for event in ("writeback_dirty_folio", "writeback_dirty_page"):
            if exists("writeback", event):
                dirty_tp = f"writeback:{event}"
                break
    return FunctionChoice(chosen, dirty_tp)


def _tracepoint_exists(category: str, event: str) -> bool:
    try:
        return system.tracepoint_exists(category, event)
    except Exception:
        return False


# -- tracepoints ---------------------------------------------------------------

_FIELD = re.compile(r"field:[^;]*?\b(\w+)(?:\[\d+\])?;")


def tracepoint_fields(category: str, event: str) -> Optional[Set[str]]:
    """Field names of a tracepoint from its tracefs format file (None if the
    tracepoint does not exist)."""
    info = system.ensure_tracefs()
    path = os.path.join(info.path, "events", category, event, "format")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return {m.group(1) for m in _FIELD.finditer(text)}


@dataclass(frozen=True)
class TracepointPlan:
    """What the tracepoint rung can use here, or why it cannot run."""

    problem: str
    add_has_order: bool = False
    mmap: bool = False
    # mmap accesses from kmem:rss_stat (pages mapped) rather than from the
    # filemap fault events
    mmap_rss: bool = False
    dirty_folio: bool = True
    hooks: Tuple[str, ...] = ()


def _needs(fields: Optional[Set[str]], name: str, required: Sequence[str]) -> str:
    if fields is None:
        return f"tracepoint {name} not found"
    missing = [f for f in required if f not in fields]
    return f"tracepoint {name} lacks field(s) {', '.join(missing)}" if missing else ""


def plan_tracepoints(fields: Callable[[str, str], Optional[Set[str]]] = tracepoint_fields) -> TracepointPlan:
    get_pages = fields("filemap", "mm_filemap_get_pages")
    add = fields("filemap", "mm_filemap_add_to_page_cache")
    problem = _needs(get_pages, "filemap:mm_filemap_get_pages", ("i_ino", "s_dev", "index", "last_index"))
    if get_pages is None:
        problem += " (added in Linux 6.11)"
    problem = problem or _needs(add, "filemap:mm_filemap_add_to_page_cache", ("i_ino", "index"))
    dirty = fields("writeback", "writeback_dirty_folio")
    dirty_folio = dirty is not None
    if dirty is None:
        dirty = fields("writeback", "writeback_dirty_page")
    problem = problem or _needs(
        dirty, "writeback:writeback_dirty_folio" if dirty_folio else "writeback:writeback_dirty_page", ("ino", "index")
    )
    fault = fields("filemap", "mm_filemap_fault")
    map_pages = fields("filemap", "mm_filemap_map_pages")
    mmap = (
        fault is not None
        and map_pages is not None
        and not _needs(map_pages, "", ("index", "last_index"))
    )
    rss = fields("kmem", "rss_stat")
    mmap_rss = rss is not None and not _needs(rss, "", ("mm_id", "curr", "member", "size"))
    hooks = ["filemap:mm_filemap_get_pages"]
    if mmap_rss:
        hooks += ["kmem:rss_stat"]
    elif mmap:
        hooks += ["filemap:mm_filemap_fault", "filemap:mm_filemap_map_pages"]
    hooks += [
        "filemap:mm_filemap_add_to_page_cache",
        "writeback:writeback_dirty_folio" if dirty_folio else "writeback:writeback_dirty_page",
    ]
    return TracepointPlan(
        problem=problem,
        add_has_order=bool(add and "order" in add),
        mmap=mmap,
        mmap_rss=mmap_rss,
        dirty_folio=dirty_folio,
        hooks=tuple(hooks),
    )


# -- fentry ----------------------------------------------------------------------

_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_TRACING = 26
_BPF_TRACE_FENTRY = 24


def fentry_load_check(function: str) -> str:
    """Can this kernel load an fentry program on ``function``? Loads an
    empty one ("return 0") through the bpf() syscall and closes it at once:
    "" when it loads, else why not. Much cheaper and quieter than compiling
    the real program (libbpf prints every refusal to stderr)."""
    import ctypes
    import platform

    from ..bpf import loader
    from ..bpf.stats import SYS_BPF

    nr = SYS_BPF.get(platform.machine())
    if nr is None:
        return f"fentry check written for x86_64 and arm64 only (this is {platform.machine()})"
    lib = loader.import_bcc().libbcc.lib
    find = getattr(lib, "libbpf_find_vmlinux_btf_id", None)
    if find is None:
        return "this BCC has no libbpf_find_vmlinux_btf_id: cannot look up fentry targets"
    find.argtypes, find.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_int
    btf_id = find(function.encode(), _BPF_TRACE_FENTRY)
    if btf_id <= 0:
        return f"{function} is not in the kernel's BTF: fentry cannot attach there"
    # r0 = 0; exit
    insns = (ctypes.c_uint64 * 2)(0x00000000000000B7, 0x0000000000000095)
    license = ctypes.c_char_p(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint32.from_buffer(attr, 0).value = _BPF_PROG_TYPE_TRACING
    ctypes.c_uint32.from_buffer(attr, 4).value = 2
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(insns)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.cast(license, ctypes.c_void_p).value or 0
    ctypes.c_uint32.from_buffer(attr, 68).value = _BPF_TRACE_FENTRY
    ctypes.c_uint32.from_buffer(attr, 108).value = btf_id
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(_BPF_PROG_LOAD), ctypes.byref(attr), ctypes.c_long(len(attr)))
    if fd >= 0:
        os.close(fd)
        return ""
    err = ctypes.get_errno()
    why = f"the kernel refused an fentry program on {function}: {os.strerror(err)}"
    if err == 1:  # EPERM
        why += f" although running as root (lockdown: {system.lockdown_mode()})" if os.geteuid() == 0 else ""
    return why
