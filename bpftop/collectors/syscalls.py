"""Syscalls collector: per-syscall count, errors and latency, per-process
counts (like bcc's syscount, both views at once).

Kernel counters are cumulative; each ``collect()`` reports the difference
since the previous one, so reading never races with resetting.

Latency is an optional probe of its own (``set_latency``): one compile holds
its sys_enter program, switched by a flag in a map, so counts have no gap
across a switch and switching loads nothing. The program is attached at the
first switch-on (at load, when latency starts on) and then stays attached:
until latency is wanted, syscalls pay for the exit program only.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ..bpf import btf_tracepoint, ladder, loader, maps, system
from ..model import HookKind, SyscallsSnapshot
from . import syscall_names
from .base import Collector
from .capabilities import Capabilities
from .pidfilter import PidFilter
from .syscall_counts import Counter, process_rows, sum_percpu, syscall_rows

MAX_PROCS = 10240
MAX_THREADS = 65536
MAX_FILTER_PIDS = 1024

LATENCY = "latency"  # the optional probe's name

# Where the start of each call is kept, best first: the program pair that
# keeps it there, and words for the probes screen. Task storage (5.11+;
# tracing programs may use it from about 6.2) needs no hashing and is
# freed with the task; the LRU hash works everywhere.
START_STORES = (
    ("task storage", b"bpftop_ts_exit", b"bpftop_ts_enter"),
    ("LRU hash by thread id", b"bpftop_sc_exit", b"bpftop_sc_enter"),
)


class SyscallsCollector(Collector[SyscallsSnapshot]):
    tab = "syscalls"
    title = "Syscalls"
    CAPABILITIES = Capabilities(kernel_filters=("pid",))

    def __init__(self, pids: Sequence[int] = (), latency: bool = False, per_process: bool = True,
                 task_storage: bool = False) -> None:
        """``latency``: time calls from the start (``set_latency`` switches
        it later). ``task_storage``: keep starts in task storage where the
        kernel takes it (True), else in the LRU hash (the default)."""
        super().__init__()
        self.latency = latency
        # Task storage (5.11+, reached through the task's BTF type) was 3%
        # cheaper here, but on Debian's 6.12 the kernel died within two
        # minutes of our sys_enter/sys_exit programs using it (the kernel
        # matrix's guest, twice): the LRU hash is the default everywhere.
        self.task_storage = bool(task_storage) and system.kernel_version() >= (5, 11) \
            and os.path.exists("/sys/kernel/btf/vmlinux")
        self.start_store = ""  # where starts are kept, once loaded
        self._enter: bytes = b""  # the sys_enter program's name, once loaded
        self._enter_attached = False
        # Latency was on at some time in the interval being read.
        self._latency_in_interval = latency
        self.per_process = per_process
        self.filter = self.key_filters["pid"] = PidFilter(pids)
        self.nr_syscalls = max(512, max(syscall_names.table(), default=0) + 1)
        self._prev: Dict[int, Counter] = {}
        self._prev_procs: Dict[int, int] = {}
        self._prev_untracked = 0
        self._sc_totals: Optional[maps.PerCpuArrayTotals] = None
        self._last = time.monotonic()

    # -- ladder -----------------------------------------------------------
    def _defines(self, raw_tp: bool, btf_args: bool = False) -> Dict[str, int]:
        def nr(name: str, default: int) -> int:
            try:
                return syscall_names.number(name)
            except KeyError:
                return default  # a number no syscall has: the test never matches

        never = 0xFFFFFFF
        return {
            "USE_RAW_TP": raw_tp,
            "BTF_ARGS": btf_args,
            "TASK_STORAGE": self.task_storage,
            "PER_PROCESS": self.per_process,
            "NR_SYSCALLS": self.nr_syscalls,
            "MAX_PROCS": MAX_PROCS,
            "MAX_THREADS": MAX_THREADS,
            "MAX_FILTER_PIDS": MAX_FILTER_PIDS,
            "SC_EXIT": nr("exit", never),
            "SC_EXIT_GROUP": nr("exit_group", never),
            "SC_EXECVE": nr("execve", never),
            "SC_EXECVEAT": nr("execveat", never),
            "SC_CLONE": nr("clone", never),
            "SC_CLONE3": nr("clone3", never),
            "SC_FORK": nr("fork", never),
            "SC_VFORK": nr("vfork", never),
        }

    def strategies(self) -> List[ladder.Strategy]:
        # sys_enter carries the latency probe, attached only while it is on.
        raw_hooks = ("sys_exit", "sys_enter")
        tp_hooks = tuple(f"raw_syscalls:{h}" for h in raw_hooks)
        return [
            ladder.Strategy("BTF raw tracepoints", HookKind.BTF_RAW_TRACEPOINT, raw_hooks, self._check_btf,
                            self._load_btf),
            ladder.Strategy("raw tracepoints", HookKind.RAW_TRACEPOINT, raw_hooks, self._check_raw, self._load_raw),
            ladder.Strategy("raw_syscalls tracepoints", HookKind.TRACEPOINT, tp_hooks, self._check_tp, self._load_tp),
        ]

    @staticmethod
    def _check_raw() -> str:
        if platform.machine() not in ("x86_64", "aarch64"):
            return ("reads the syscall number from pt_regs, written for x86_64 and arm64 only "
                    f"(this is {platform.machine()})")
        if not system.raw_tracepoints_supported():
            return "kernel has no raw tracepoints (before 4.17)"
        return ""

    @classmethod
    def _check_btf(cls) -> str:
        return cls._check_raw() or btf_tracepoint.missing(("sys_exit", "sys_enter"))

    @staticmethod
    def _check_tp() -> str:
        missing = [e for e in ("sys_enter", "sys_exit") if not system.tracepoint_exists("raw_syscalls", e)]
        return f"tracepoint raw_syscalls:{missing[0]} not found" if missing else ""

    def _load_programs(self, bpf: Any, load_one: Callable[[bytes, str], Any]) -> Tuple[bytes, bytes]:
        """Load the first exit/enter pair the verifier takes (task storage
        where it was built in, then the LRU hash); no recompiling.
        ``load_one(name, hook)`` loads one program for its hook."""
        why = []
        for store, exit_fn, enter_fn in START_STORES:
            if store == "task storage" and not self.task_storage:
                continue
            try:
                load_one(exit_fn, "sys_exit")
                load_one(enter_fn, "sys_enter")
            except Exception as exc:  # the verifier refused it: the next store
                why.append(f"{store}: {' '.join(str(exc).split())[:200]}")
                for name in (exit_fn, enter_fn):
                    fn = bpf.funcs.pop(name, None)
                    if fn is not None:
                        os.close(fn.fd)
                continue
            self.start_store = store
            return exit_fn, enter_fn
        raise RuntimeError("no latency program loads: " + "; ".join(why))

    def _load_btf(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            exit_fn, self._enter = self._load_programs(
                bpf, lambda name, hook: btf_tracepoint.load(bpf, bcc, name, hook))
            btf_tracepoint.attach(bpf, bpf.funcs[exit_fn], "sys_exit")

        return self._load(True, attach, btf_args=True)

    def _load_raw(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            exit_fn, self._enter = self._load_programs(
                bpf, lambda name, hook: bpf.load_func(name, bcc.BPF.RAW_TRACEPOINT))
            bpf.attach_raw_tracepoint(tp=b"sys_exit", fn_name=exit_fn)

        return self._load(True, attach)

    def _load(self, raw_tp: bool, attach: Callable[[Any], None], btf_args: bool = False) -> Any:
        compiled = []

        def then_attach(bpf: Any) -> None:
            compiled.append(True)
            attach(bpf)

        try:
            return loader.load("syscalls", self._defines(raw_tp, btf_args), then_attach)
        except Exception:
            if compiled or not self.task_storage:
                raise
            # A kernel that would not even create the task storage map:
            # once more without it (a second compile, on such kernels only).
            self.task_storage = False
            return loader.load("syscalls", self._defines(raw_tp, btf_args), attach)

    def _load_tp(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            exit_fn, self._enter = self._load_programs(
                bpf, lambda name, hook: bpf.load_func(name, bcc.BPF.TRACEPOINT))
            bpf.attach_tracepoint(tp=b"raw_syscalls:sys_exit", fn_name=exit_fn)

        return self._load(False, attach)

    # -- the latency probe ------------------------------------------------------
    def _kind(self) -> Optional[HookKind]:
        return self._strategy.kind if self._strategy is not None else None

    def _attach_enter(self) -> None:
        """Attached once, at the first switch-on, and left attached: it
        stamps starts only while latency_since says latency is on. Never
        attached, it costs nothing; attached, it reads the flag at each
        syscall. (Attaching and detaching it at each switch brought Debian's
        6.12 down in the matrix's guests, then emulated with one host thread
        per vCPU: a switch attaches at most once.)"""
        with loader.BCC_LOCK, loader.native_output_kept():
            if self._kind() is HookKind.BTF_RAW_TRACEPOINT:
                btf_tracepoint.attach(self._bpf, self._bpf.funcs[self._enter], "sys_enter")
            elif self._kind() is HookKind.RAW_TRACEPOINT:
                self._bpf.attach_raw_tracepoint(tp=b"sys_enter", fn_name=self._enter)
            else:
                self._bpf.attach_tracepoint(tp=b"raw_syscalls:sys_enter", fn_name=self._enter)
        self._enter_attached = True

    def _switch(self, on: bool) -> None:
        """On: time calls that start from now on (a start stamped by an
        earlier switch-on is never matched). Off: stamp and time nothing."""
        now = ctypes.c_uint64(time.monotonic_ns() if on else 0)
        self._bpf[b"latency_since"][ctypes.c_int(0)] = now

    def optional_probes(self) -> Dict[str, bool]:
        return {LATENCY: self.latency}

    def optional_programs(self) -> Dict[str, str]:
        return {self._enter.decode(): LATENCY} if self._enter else {}

    @property
    def latency_attached(self) -> bool:
        """Whether the latency program is attached (from its first switch-on)."""
        return self._enter_attached

    def set_optional_probe(self, name: str, on: bool) -> None:
        if name != LATENCY:
            raise ValueError(f"the {self.title} collector has no optional probe {name!r}")
        self.set_latency(on)

    def set_latency(self, on: bool) -> None:
        """Switch call timing on or off, live: the counts go on untouched.
        Before the collector runs this only says how it will start."""
        with self._lock:
            on = bool(on)
            if self._bpf is not None and on != self.latency:
                if on and not self._enter_attached:
                    try:
                        self._attach_enter()
                    except Exception as exc:
                        raise ValueError(f"the latency program could not be attached: {exc}") from None
                self._switch(on)
            self.latency = on
            self._latency_in_interval |= on

    def _on_loaded(self) -> None:
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self._enter_attached = False
        if self.latency:
            try:
                self._attach_enter()
            except Exception:  # counting goes on; the probes screen shows latency off
                self.latency = False
        self._switch(self.latency)
        self._latency_in_interval = self.latency
        self._baseline()

    def _baseline(self) -> None:
        """Start a new interval now. Counts made under another filter (or
        before the filter was written) are not the operator's to see."""
        self._prev = self._read_counters()
        procs, self._prev_untracked, _ = self._read_processes()
        self._prev_procs = {pid: count for pid, (count, _) in procs.items()}
        self._last = time.monotonic()

    # -- reading --------------------------------------------------------------
    def _read_counters(self) -> Dict[int, Counter]:
        table = self._bpf[b"sc_stats"]
        if self._sc_totals is None or self._sc_totals.table is not table:  # a new program since
            self._sc_totals = maps.PerCpuArrayTotals(table)
        totals = self._sc_totals.read()
        if totals is not None:
            count, errors, total_ns, timed = (totals[f] for f in ("count", "errors", "total_ns", "timed"))
            return {nr: Counter(n, errors[nr], total_ns[nr], timed[nr]) for nr, n in enumerate(count) if n}
        out = {}
        for key, percpu in maps.items(self._bpf[b"sc_stats"]):
            c = sum_percpu(percpu)
            if c.count:
                out[maps.key_int(key)] = c
        return out

    def _read_processes(self) -> Tuple[Dict[int, Tuple[int, str]], int, Set[int]]:
        """Per-process cumulative counts: the hash plus each CPU's pending
        count for the process it last saw. Also returns the untracked-call
        total and the processes some CPU still holds a pending count for.

        A CPU that switches process while the hash is being read moves its
        pending count into the hash, which would count it twice or not at
        all; its ``switches`` counter shows that, and the read is retried.
        """
        if not self.per_process:
            return {}, 0, set()
        cache = self._bpf[b"proc_cache"]
        for _ in range(5):
            before = [c.switches for c in cache.getvalue(0)]
            items = maps.items(self._bpf[b"proc_stats"])
            after = [(c.tgid, c.switches, c.pending) for c in cache.getvalue(0)]
            if before == [a[1] for a in after]:
                break
        current: Dict[int, Tuple[int, str]] = {
            maps.key_int(k): (v.count, maps.comm(bytes(v.comm))) for k, v in items
        }
        for tgid, _, pending in after:
            if pending:
                count, comm = current.get(tgid, (0, ""))
                current[tgid] = (count + pending, comm)
        untracked = maps.percpu_total(self._bpf[b"untracked"])
        return current, untracked, {tgid for tgid, _, pending in after if pending}

    def _forget_dead(self, current: Mapping[int, Tuple[int, str]], pending: Set[int]) -> None:
        """Drop exited processes from the kernel map once their last counts
        have been reported, so the map does not fill up with the dead. One
        that a CPU still holds a pending count for stays: deleting it would
        turn that count into an unattributed one."""
        for pid in maps.drop_exited(self._bpf[b"proc_stats"], list(current), keep=pending):
            self._prev_procs.pop(pid, None)

    def _read(self) -> SyscallsSnapshot:
        now = time.monotonic()
        counters = self._read_counters()
        procs, untracked, pending = self._read_processes()
        latency = self._latency_in_interval
        rows = syscall_rows(counters, self._prev, self.nr_syscalls, latency)
        proc_rows = process_rows(procs, self._prev_procs)
        snapshot = SyscallsSnapshot(
            interval_s=now - self._last,
            taken_at=time.time(),
            rows=rows,
            processes=proc_rows,
            latency=latency,
            pid_filter=self.filter.pids,
            pid_exclude=self.filter.exclude,
            hook=self.hook,
            untracked_calls=untracked - self._prev_untracked,
        )
        self._prev = counters
        self._prev_procs = {pid: count for pid, (count, _) in procs.items()}
        self._prev_untracked = untracked
        self._last = now
        self._latency_in_interval = self.latency
        if self.per_process:
            self._forget_dead(procs, pending)
        return snapshot
