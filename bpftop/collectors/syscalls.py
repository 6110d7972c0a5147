"""Syscalls collector: per-syscall count, errors and latency, per-process
counts (like bcc's syscount, both views at once).

Kernel counters are cumulative; each ``collect()`` reports the difference
since the previous one, so reading never races with resetting.

Latency is an optional probe of its own (``set_latency``): one compile holds
its two programs (sys_enter stamps a call's start, sched_switch moves the
start of a call whose thread leaves the CPU from a per-CPU slot into a
hash), switched by a flag in a map, so counts have no gap across a switch
and switching loads nothing. They are attached at the first switch-on (at
load, when latency starts on) and then stay attached: until latency is
wanted, syscalls pay for the exit program only.
"""

from __future__ import annotations

import ctypes
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

EXIT_FN = b"bpftop_sc_exit"
# The latency probe's programs and their hooks, in the order they are
# attached: sched_switch first, so that no start is ever stamped in a
# CPU's slot without its thread's leaving the CPU being seen.
LATENCY_PROGRAMS = ((b"bpftop_sc_switch", "sched_switch", "sched:sched_switch"),
                    (b"bpftop_sc_enter", "sys_enter", "raw_syscalls:sys_enter"))


class SyscallsCollector(Collector[SyscallsSnapshot]):
    tab = "syscalls"
    title = "Syscalls"
    CAPABILITIES = Capabilities(kernel_filters=("pid",))

    def __init__(self, pids: Sequence[int] = (), latency: bool = False, per_process: bool = True) -> None:
        """``latency``: time calls from the start (``set_latency`` switches
        it later)."""
        super().__init__()
        self.latency = latency
        self._latency_attached = False
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
        # sys_enter and sched_switch carry the latency probe, attached only
        # from its first switch-on.
        raw_hooks = ("sys_exit", "sys_enter", "sched_switch")
        tp_hooks = ("raw_syscalls:sys_exit", "raw_syscalls:sys_enter", "sched:sched_switch")
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
        return cls._check_raw() or btf_tracepoint.missing(("sys_exit", "sys_enter", "sched_switch"))

    @staticmethod
    def _check_tp() -> str:
        for name in ("raw_syscalls:sys_enter", "raw_syscalls:sys_exit", "sched:sched_switch"):
            if not system.tracepoint_exists(*name.split(":")):
                return f"tracepoint {name} not found"
        return ""

    @staticmethod
    def _load_all(load_one: Callable[[bytes, str], Any]) -> None:
        """Load every program at start (the verifier's word comes then, not
        at the first switch-on); only the exit program is attached then.
        ``load_one(name, raw tracepoint)`` loads one for its hook."""
        load_one(EXIT_FN, "sys_exit")
        for name, raw_hook, _ in LATENCY_PROGRAMS:
            load_one(name, raw_hook)

    def _load_btf(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            self._load_all(lambda name, hook: btf_tracepoint.load(bpf, bcc, name, hook))
            btf_tracepoint.attach(bpf, bpf.funcs[EXIT_FN], "sys_exit")

        return loader.load("syscalls", self._defines(True, btf_args=True), attach)

    def _load_raw(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            self._load_all(lambda name, hook: bpf.load_func(name, bcc.BPF.RAW_TRACEPOINT))
            bpf.attach_raw_tracepoint(tp=b"sys_exit", fn_name=EXIT_FN)

        return loader.load("syscalls", self._defines(True), attach)

    def _load_tp(self) -> Any:
        bcc = loader.import_bcc()

        def attach(bpf: Any) -> None:
            self._load_all(lambda name, hook: bpf.load_func(name, bcc.BPF.TRACEPOINT))
            bpf.attach_tracepoint(tp=b"raw_syscalls:sys_exit", fn_name=EXIT_FN)

        return loader.load("syscalls", self._defines(False), attach)

    # -- the latency probe ------------------------------------------------------
    def _kind(self) -> Optional[HookKind]:
        return self._strategy.kind if self._strategy is not None else None

    def _attach_latency(self) -> None:
        """Attached once, at the first switch-on, and left attached: they
        stamp and move starts only while latency_since says latency is on.
        Never attached, they cost nothing; attached, each reads the flag at
        each run. (Attaching and detaching sys_enter at each switch brought
        Debian's 6.12 down in the matrix's guests, then emulated with one
        host thread per vCPU: a switch attaches at most once.) A program
        attached before a later one failed stays attached, harmless: the
        flag stays off."""
        with loader.BCC_LOCK, loader.native_output_kept():
            for name, raw_hook, tp in LATENCY_PROGRAMS:
                key = raw_hook.encode()
                if key in self._bpf.raw_tracepoint_fds or tp.encode() in self._bpf.tracepoint_fds:
                    continue
                if self._kind() is HookKind.BTF_RAW_TRACEPOINT:
                    btf_tracepoint.attach(self._bpf, self._bpf.funcs[name], raw_hook)
                elif self._kind() is HookKind.RAW_TRACEPOINT:
                    self._bpf.attach_raw_tracepoint(tp=key, fn_name=name)
                else:
                    self._bpf.attach_tracepoint(tp=tp.encode(), fn_name=name)
        self._latency_attached = True

    def _switch(self, on: bool) -> None:
        """On: time calls that start from now on (a start stamped by an
        earlier switch-on is never matched). Off: stamp and time nothing."""
        now = ctypes.c_uint64(time.monotonic_ns() if on else 0)
        self._bpf[b"latency_since"][ctypes.c_int(0)] = now

    def optional_probes(self) -> Dict[str, bool]:
        return {LATENCY: self.latency}

    def optional_programs(self) -> Dict[str, str]:
        return {name.decode(): LATENCY for name, _, _ in LATENCY_PROGRAMS} if self._bpf is not None else {}

    @property
    def latency_attached(self) -> bool:
        """Whether the latency programs are attached (from the first switch-on)."""
        return self._latency_attached

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
                if on and not self._latency_attached:
                    try:
                        self._attach_latency()
                    except Exception as exc:
                        raise ValueError(f"the latency programs could not be attached: {exc}") from None
                self._switch(on)
            self.latency = on
            self._latency_in_interval |= on

    def _on_loaded(self) -> None:
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self._latency_attached = False
        if self.latency:
            try:
                self._attach_latency()
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
        The hash and the pending counts are read so that they agree
        (``maps.items_beside_runs``).
        """
        if not self.per_process:
            return {}, 0, set()
        items, runs = maps.items_beside_runs(self._bpf[b"proc_stats"], self._bpf[b"proc_cache"])
        current: Dict[int, Tuple[int, str]] = {
            maps.key_int(k): (v.count, maps.comm(bytes(v.comm))) for k, v in items
        }
        pending = [(int(c.tgid), int(c.pending)) for c in runs if c.pending]
        for tgid, n in pending:
            count, comm = current.get(tgid, (0, ""))
            current[tgid] = (count + n, comm)
        untracked = maps.percpu_total(self._bpf[b"untracked"])
        return current, untracked, {tgid for tgid, _ in pending}

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
