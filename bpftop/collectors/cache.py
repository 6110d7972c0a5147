"""Cache collector: page-cache accesses, misses and dirties per process
(bcc's cachetop) with system totals and /proc/meminfo (cachestat).

Hook ladder:
  1. kprobes on folio_mark_accessed|mark_page_accessed,
     filemap_add_folio|add_to_page_cache_lru,
     folio_account_dirtied|account_page_dirtied, mark_buffer_dirty:
     counts calls, exactly as cachetop does;
  2. fentry on the same functions (needs BTF and trampolines; refused
     under lockdown on some kernels);
  3. tracepoints filemap:mm_filemap_get_pages (+ fault / map_pages),
     filemap:mm_filemap_add_to_page_cache, writeback:writeback_dirty_folio:
     counts pages (see TRACEPOINT_NOTE).

Kernel counters are cumulative; each ``collect()`` reports the difference
since the previous one, so reading never races with resetting.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Dict, List, Mapping, Optional, Pattern, Sequence, Tuple

from .. import procfs
from ..bpf import btf, ladder, loader, maps, system
from ..model import CountUnit, HookKind
from ..model.cache import CacheCounts, CacheRow, CacheSnapshot
from . import cache_hooks
from .base import Collector
from .capabilities import Capabilities
from .pidfilter import PidFilter

MAX_PROCS = 10240
MAX_THREADS = 16384
MAX_FILTER_PIDS = 1024
MAX_LARGE_FOLIOS = 65536

KPROBE_NOTE = "counts calls, as cachetop: one per folio on folio kernels, so large folios count once"
TRACEPOINT_NOTE = (
    "counts pages: accesses = pages each read() asks for (filemap_get_pages range, once per read) "
    "+ file pages mapped (rss_stat growth); misses from pages added (folio order); "
    "dirties from writeback_dirty_folio (sized from the folio itself); "
    "no mark_buffer_dirty, so writes add no accesses"
)

Item = Tuple[CacheCounts, int, str]  # counts, uid, comm


def folio_offsets() -> Dict[str, int]:
    """Where a folio keeps its flags and its order, from the kernel's BTF, as
    -D values for DIRTY_RAW; empty when the BTF does not say."""
    if not system.btf_available():
        return {}
    try:
        found = btf.members((("folio", "flags"), ("folio", "_flags_1"), ("folio", "_folio_order")))
        b = btf.Btf()
        try:
            head = b.enum_value("pageflags", "PG_head")
        finally:
            b.close()
    except btf.BtfError:
        return {}
    flags = found[("folio", "flags")]
    if flags is None or flags[1] != 8 or head is None or not 0 <= head < 64:
        return {}
    out = {"FOLIO_FLAGS": flags[0], "PG_HEAD_BIT": head}
    # 6.6 moved the order into the low byte of the first tail page's flags.
    if found[("folio", "_folio_order")] is not None:
        out.update(FOLIO_ORDER=found[("folio", "_folio_order")][0], FOLIO_ORDER_BYTE=True)
    elif found[("folio", "_flags_1")] is not None and found[("folio", "_flags_1")][1] == 8:
        out["FOLIO_ORDER"] = found[("folio", "_flags_1")][0]
    else:
        return {}
    return out


# mm_filemap_get_pages's TP_PROTO as the raw tracepoint passes it: the
# mapping (used only as the file's identity) and the page range.
GET_PAGES_ARGS = (("address_space *", "long unsigned int", "long unsigned int"),
                  ("address_space *", "pgoff_t", "pgoff_t"))


def get_pages_raw() -> bool:
    """Whether mm_filemap_get_pages can be read as a raw tracepoint: its
    arguments, as the running kernel's BTF gives them, are the ones the
    program reads. Otherwise the classic tracepoint, whose fields are
    checked by name."""
    if not system.btf_available():
        return False
    try:
        b = btf.Btf()
        try:
            args = b.raw_tracepoint_args("mm_filemap_get_pages")
        finally:
            b.close()
    except btf.BtfError:
        return False
    return args in GET_PAGES_ARGS


def _counts(v: Any) -> CacheCounts:
    return CacheCounts(int(v.accesses), int(v.buffer_dirties), int(v.added), int(v.dirtied))


TRAMPOLINE_SYMBOL = "bpf_trampoline_link_prog"  # fentry needs BPF trampolines
system.want_symbols([TRAMPOLINE_SYMBOL])


_MEMINFO = procfs.KeptFile("/proc/meminfo")


def read_meminfo(source: Optional[procfs.KeptFile] = None) -> Tuple[Optional[float], Optional[float]]:
    """(Buffers, Cached) in MB, None for a field the file lacks."""
    values: Dict[str, float] = {}
    try:
        for line in (source or _MEMINFO).read().decode("ascii", "replace").splitlines():
            key, _, rest = line.partition(":")
            if key in ("Buffers", "Cached"):
                values[key] = int(rest.split()[0]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return values.get("Buffers"), values.get("Cached")


def process_rows(
    current: Mapping[int, Item], previous: Mapping[int, CacheCounts], comm: Optional[Pattern[str]] = None
) -> Tuple[CacheRow, ...]:
    """Rows for processes with any activity in the interval (busiest reads
    first), the comm filter applied."""
    rows = []
    for pid, (counts, uid, name) in current.items():
        delta = counts.minus(previous.get(pid, CacheCounts()))
        if delta.empty:
            continue
        if comm is not None and not comm.search(name):
            continue
        rows.append(CacheRow(pid, uid, name, delta))
    rows.sort(key=lambda r: (-r.stats.total, -r.counts.added, -r.counts.dirtied, r.pid))
    return tuple(rows)


def compile_comm_filter(pattern: Optional[str]) -> Optional[Pattern[str]]:
    if pattern is None or pattern == "":
        return None
    if not isinstance(pattern, str):
        raise ValueError(f"comm filter must be a string, not {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"comm filter {pattern!r} is not a valid regular expression: {e}") from None


class CacheCollector(Collector[CacheSnapshot]):
    tab = "cache"
    title = "Cache"
    CAPABILITIES = Capabilities(kernel_filters=("pid",), units=(CountUnit.PAGES, CountUnit.CALLS))

    def __init__(self, pids: Sequence[int] = (), comm: Optional[str] = None) -> None:
        super().__init__()
        self.filter = self.key_filters["pid"] = PidFilter(pids)
        self._comm_text = comm or ""
        self._comm = compile_comm_filter(comm)
        self._prev_procs: Dict[int, CacheCounts] = {}
        self._prev_totals = CacheCounts()
        self._prev_untracked = 0
        self._last = time.monotonic()

    # -- ladder -----------------------------------------------------------
    def _base_defines(self) -> Dict[str, int]:
        return {
            "MAX_PROCS": MAX_PROCS,
            "MAX_THREADS": MAX_THREADS,
            "MAX_FILTER_PIDS": MAX_FILTER_PIDS,
            "MAX_LARGE_FOLIOS": MAX_LARGE_FOLIOS,
        }

    def strategies(self) -> List[ladder.Strategy]:
        funcs = cache_hooks.choose_functions()
        plan = cache_hooks.plan_tracepoints()
        return [
            ladder.Strategy(
                "kprobes", HookKind.KPROBE, funcs.hooks(),
                lambda: self._check_kprobes(funcs), lambda: self._load_kprobes(funcs),
                unit=CountUnit.CALLS, note=KPROBE_NOTE,
            ),
            ladder.Strategy(
                "fentry", HookKind.FENTRY, funcs.hooks(),
                lambda: self._check_fentry(funcs), lambda: self._load_fentry(funcs),
                unit=CountUnit.CALLS, note=KPROBE_NOTE,
            ),
            ladder.Strategy(
                "tracepoints", HookKind.TRACEPOINT, plan.hooks,
                lambda: plan.problem, lambda: self._load_tracepoints(plan),
                unit=CountUnit.PAGES, note=TRACEPOINT_NOTE,
            ),
        ]

    @staticmethod
    def _check_kprobes(funcs: cache_hooks.FunctionChoice) -> str:
        ok, why = system.kprobes_available()
        if not ok:
            return why
        missing = funcs.missing()
        if missing:
            return missing
        gone = system.not_traceable([fn for fn in funcs.chosen.values() if fn])
        if gone:
            return f"kernel function {gone[0]} is not traceable (notrace, or only inlined copies)"
        return ""

    @staticmethod
    def _check_fentry(funcs: cache_hooks.FunctionChoice) -> str:
        if not system.btf_available():
            return "no kernel BTF (/sys/kernel/btf/vmlinux): fentry needs it"
        missing = funcs.missing()
        if missing:
            return missing
        # BCC's support_kfunc() looks this symbol up through its symbol
        # cache, which crashes when another thread uses BCC at the same time;
        # kallsyms read here is the same test.
        if not system.kernel_symbols([TRAMPOLINE_SYMBOL]):
            return "kernel has no BPF trampolines (bpf_trampoline_link_prog not in /proc/kallsyms)"
        # Load an empty fentry program first: quiet and quick, where a
        # refused compile costs a second and a line on stderr. libbpf's BTF
        # lookup runs under the compile lock, away from other BCC work.
        with loader.BCC_LOCK:
            return cache_hooks.fentry_load_check(funcs.chosen["access"] or "")

    def _load_kprobes(self, funcs: cache_hooks.FunctionChoice) -> Any:
        def attach(bpf: Any) -> None:
            for role, fn in funcs.chosen.items():
                if fn is None:
                    continue  # dirtied, counted on its tracepoint
                bpf.attach_kprobe(event=fn.encode(), fn_name=cache_hooks.KPROBE_FN[role].encode())

        return loader.load("cache", dict(self._base_defines(), HOOK_KPROBE=True, **funcs.defines_for_dirty()), attach)

    def _load_fentry(self, funcs: cache_hooks.FunctionChoice) -> Any:
        # BCC loads and attaches every KFUNC_PROBE while compiling.
        try:
            defines = dict(self._base_defines(), HOOK_FENTRY=True, **funcs.defines(), **funcs.defines_for_dirty())
            return loader.load("cache", defines)
        except Exception as exc:
            text = " ".join(str(exc).split())
            # BCC turns the kernel's EPERM into "Need super-user privileges";
            # as root that is the kernel saying no (lockdown, or a BPF LSM).
            if os.geteuid() == 0 and ("super-user" in text or "Operation not permitted" in text):
                raise RuntimeError(
                    f"the kernel refused to load the fentry programs with EPERM although running as root "
                    f"(lockdown: {system.lockdown_mode()}); BCC: {text}"
                ) from None
            raise

    def _load_tracepoints(self, plan: cache_hooks.TracepointPlan) -> Any:
        defines = dict(
            self._base_defines(),
            ADD_HAS_ORDER=plan.add_has_order,
            TRACK_MMAP=plan.mmap,
            MMAP_RSS=plan.mmap_rss,
            DIRTY_TP_FOLIO=int(plan.dirty_folio),
        )
        folio = folio_offsets() if plan.dirty_folio else {}
        if folio:
            defines.update(folio, DIRTY_RAW=True)
        read_raw = get_pages_raw()
        defines.update(READ_RAW=read_raw)

        def attach(bpf: Any) -> None:
            if folio:
                bpf.attach_raw_tracepoint(tp=b"writeback_dirty_folio", fn_name=b"bpftop_ca_dirty_raw")
            if read_raw:
                bpf.attach_raw_tracepoint(tp=b"mm_filemap_get_pages", fn_name=b"bpftop_ca_read_raw")

        return loader.load("cache", defines, attach if folio or read_raw else None)

    @property
    def unit(self) -> str:
        """What the counts are in, as the rung in use declares it."""
        unit = self._strategy.unit if self._strategy is not None else None
        return (unit or CountUnit.PAGES).value

    def _on_loaded(self) -> None:
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self._baseline()

    def _baseline(self) -> None:
        """Start a new interval now. Counts made under another filter (or
        before the filter was written) are not the operator's to see."""
        procs, totals = self._read_counts()
        self._prev_procs = {pid: c for pid, (c, _, _) in procs.items()}
        self._prev_totals = totals
        self._prev_untracked = self._read_untracked()
        self._last = time.monotonic()

    # -- run-time filters ---------------------------------------------------
    def set_comm_filter(self, pattern: Optional[str]) -> None:
        """Show only processes whose name matches this regular expression
        (None or "" for all). Applied in Python, to rows only. Raises
        ValueError (and keeps the old filter) on a bad expression."""
        compiled = compile_comm_filter(pattern)
        with self._lock:
            self._comm, self._comm_text = compiled, pattern or ""

    # -- reading --------------------------------------------------------------
    def _read_counts(self) -> Tuple[Dict[int, Item], CacheCounts]:
        """Per-process cumulative counts (the hash plus each CPU's run not
        yet moved into it) and the system totals, read so that they agree
        (``maps.items_beside_runs``)."""
        items, after = maps.items_beside_runs(self._bpf[b"proc_stats"], self._bpf[b"proc_cache"])
        current: Dict[int, Item] = {
            maps.key_int(k): (_counts(v.c), int(v.uid), maps.comm(bytes(v.comm))) for k, v in items
        }
        totals = CacheCounts()
        for c in after:
            totals = totals.plus(_counts(c.total))
            # A run of a process no longer in the hash was reported before
            # the process was dropped; the kernel discards it when it ends.
            if c.tgid in current:
                counts, uid, name = current[c.tgid]
                current[c.tgid] = (counts.plus(_counts(c.pending)), uid, name)
        return current, totals

    def _read_untracked(self) -> int:
        return maps.percpu_total(self._bpf[b"untracked"])

    def _forget_dead(self, current: Mapping[int, Item]) -> None:
        """Drop exited processes from the kernel map once their last counts
        have been reported, so the map does not fill up with the dead. A
        CPU's run for one (already reported) ends without an entry to go
        to: the kernel drops it."""
        for pid in maps.drop_exited(self._bpf[b"proc_stats"], list(current)):
            self._prev_procs.pop(pid, None)

    def _read(self) -> CacheSnapshot:
        now = time.monotonic()
        procs, totals = self._read_counts()
        untracked = self._read_untracked()
        buffers, cached = read_meminfo()
        snapshot = CacheSnapshot(
            interval_s=now - self._last,
            taken_at=time.time(),
            rows=process_rows(procs, self._prev_procs, self._comm),
            totals=totals.minus(self._prev_totals),
            buffers_mb=buffers,
            cached_mb=cached,
            unit=self.unit,
            pid_filter=self.filter.pids,
            pid_exclude=self.filter.exclude,
            comm_filter=self._comm_text,
            hook=self.hook,
            untracked_events=untracked - self._prev_untracked,
        )
        self._prev_procs = {pid: c for pid, (c, _, _) in procs.items()}
        self._prev_totals = totals
        self._prev_untracked = untracked
        self._last = now
        self._forget_dead(procs)
        return snapshot
