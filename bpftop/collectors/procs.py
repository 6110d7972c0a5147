"""Processes collector: exec (with argv), exit (code, signal, lifetime),
fork counts, file opens (path, flags, fd or errno) and signals (sender,
target, result): execsnoop, exitsnoop, opensnoop and killsnoop at once,
all on tracepoints.

The kernel program counts per process in a hash map (read once an
interval) and streams each exec, exit, open and signal through a ring
buffer (perf buffer on kernels without one). A poll thread owned by the
collector drains it continuously; ``collect()`` asks that thread to drain
once more, so everything the kernel sent before the call is in the
snapshot. Lost events are counted in the kernel, per kind, and shown.

Filters: pid and uid in BPF maps (changed at run time, never recompiled).
Name, path, errno and signal filters apply to the event logs and rows in
Python (the view's row filter).
"""

from __future__ import annotations

import functools
import platform
import time
from typing import Any, Dict, List, Sequence, Tuple

from .. import procfs
from ..bpf import ladder, loader, maps, system
from ..model import EventBuffer, HookKind
from ..model.procs import ProcsSnapshot
from .base import Collector, FilterValue
from .capabilities import Capabilities, KernelField
from .event_pump import Batching, EventPump, buffer_pages
from .pidfilter import PidFilter
from .procs_events import (
    ARG_LEN,
    COUNT_FIELDS,
    FULL_SIZE,
    LOST_KINDS,
    MAX_ARGS,
    MAX_EVENTS,
    PATH_LEN,
    SMALL_SIZE,
    CountTable,
    EventLog,
    short_lived,
)
from .procs_kernel import MAX_FILTER_UIDS, REQUIRED_TRACEPOINTS, UidFilter, task_offsets, tracepoint

MAX_PROCS = 16384
MAX_PENDING = 8192  # execs and opens in flight at once
MAX_FILTER_PIDS = 1024
RING_PAGES = 1024  # 4 MiB: about 12,000 opens, or 5,000 execs
PERF_PAGES = 64  # per CPU
GONE_EVERY = 10  # reads between looks in /proc for processes that ended unseen
BUFFERS = ("auto", "ring", "perf")

class ProcsCollector(Collector[ProcsSnapshot]):
    tab = "procs"
    title = "Processes"
    CAPABILITIES = Capabilities(
        kernel_filters=("pid", "uid"),
        buffers=(EventBuffer.RING, EventBuffer.PERF),
    )

    def __init__(
        self,
        pids: Sequence[int] = (),
        uids: Sequence[int] = (),
        buffer: str = "auto",
        ring_pages: int = RING_PAGES,
        perf_pages: int = PERF_PAGES,
        poll: bool = True,
        max_events: int = MAX_EVENTS,
    ) -> None:
        """``buffer``: "ring", "perf" or "auto" (ring, perf where the kernel
        has none). ``poll=False`` drains only in ``collect()`` (tests use it
        with a small buffer to make events get lost on purpose)."""
        super().__init__()
        if buffer not in BUFFERS:
            raise ValueError(f"buffer must be one of {', '.join(BUFFERS)}, not {buffer!r}")
        self.buffer = buffer
        self.ring_pages = buffer_pages(ring_pages, "ring buffer pages")
        self.max_events = max_events
        self.filter = self.key_filters["pid"] = PidFilter(pids)
        self.uids = self.key_filters["uid"] = UidFilter(uids)
        self.log = EventLog(max_events)
        self.counts = CountTable()
        self.events = EventPump("procs", lambda data: self.log.feed(data), SMALL_SIZE, FULL_SIZE,
                                buffer_pages(perf_pages, "perf buffer pages"), threaded=poll,
                                batching=Batching.RING)
        self._lost_base: Tuple[int, ...] = (0,) * len(LOST_KINDS)
        self._lost_prev = 0
        self._reads = 0
        self._last = time.monotonic()

    # -- ladder -----------------------------------------------------------
    def strategies(self) -> List[ladder.Strategy]:
        bufs = {"auto": (True, False), "ring": (True,), "perf": (False,)}[self.buffer]
        hooks = ("sched:sched_process_exec", "sched:sched_process_exit", "sched_process_fork (raw)",
                 "syscalls:sys_enter/exit_execve(at)", "syscalls:sys_enter/exit_open(at,at2)",
                 "signal:signal_generate")
        out = []
        for ring in bufs:
            buffer = EventBuffer.RING if ring else EventBuffer.PERF
            out.append(ladder.Strategy(
                f"sched/syscalls/signal tracepoints, {buffer.value}", HookKind.TRACEPOINT, hooks,
                functools.partial(self._check, ring), functools.partial(self._load, ring),
                buffer=buffer,
            ))
        return out

    def _check(self, ring: bool) -> str:
        for name in REQUIRED_TRACEPOINTS:
            if not tracepoint(name):
                return f"tracepoint {name} not found"
        if ring and system.kernel_version() < (5, 8):
            return f"kernel {platform.release()} has no BPF ring buffer (5.8 and later)"
        if system.kernel_version() < (4, 17):
            return f"kernel {platform.release()} has no raw tracepoints (4.17 and later)"
        _, why = task_offsets()
        return why

    def _defines(self, ring: bool) -> Dict[str, Any]:
        offsets, why = task_offsets()
        if why:
            raise RuntimeError(why)
        defines: Dict[str, Any] = dict(offsets)
        defines.update(
            USE_RINGBUF=ring,
            RINGBUF_PAGES=self.ring_pages,
            HAVE_OPEN=tracepoint("syscalls:sys_enter_open"),
            HAVE_OPENAT2=tracepoint("syscalls:sys_enter_openat2"),
            HAVE_EXECVEAT=tracepoint("syscalls:sys_enter_execveat"),
            MAX_PROCS=MAX_PROCS,
            MAX_PENDING=MAX_PENDING,
            MAX_FILTER_PIDS=MAX_FILTER_PIDS,
            MAX_FILTER_UIDS=MAX_FILTER_UIDS,
            PATH_LEN=PATH_LEN,
            ARG_LEN=ARG_LEN,
            MAX_ARGS=MAX_ARGS,
        )
        return defines

    def _load(self, ring: bool) -> Any:
        return loader.load("procs", self._defines(ring), lambda bpf: self.events.open(bpf, ring))

    def _on_loaded(self) -> None:
        self.log = EventLog(self.max_events)
        self.filter.bind(self._bpf[b"filter_mode"], self._bpf[b"filter_pids"])
        self.uids.bind(self._bpf[b"uid_mode"], self._bpf[b"filter_uids"])
        self._baseline()
        self.events.start(self._bpf)

    def _baseline(self) -> None:
        self.events.drain()
        self.log.reset()
        self.counts.reset(self._entries())
        self._lost_base = self._read_lost()
        self._lost_prev = 0
        self._last = time.monotonic()

    def stop(self) -> None:
        self.events.stop()
        super().stop()

    def _set_kernel_filter(self, field: KernelField, values: Sequence[FilterValue], exclude: bool) -> None:
        self.key_filters[field].set(values, exclude)  # type: ignore[arg-type]  # KeyFilter checks the type

    # -- reading ----------------------------------------------------------
    def _entries(self) -> List[Tuple[int, int, int, str, Tuple[int, ...]]]:
        if self._bpf is None:
            return []
        out = []
        for key, value in maps.items(self._bpf[b"counts"]):
            pid = maps.key_int(key)
            # An entry made by a signal it received has no name: the kernel
            # saw the sender, not it.
            name = maps.comm(bytes(value.comm)) or self._comm_of(pid)
            out.append((pid, int(value.ppid), int(value.uid), name,
                        tuple(int(getattr(value, f)) for f in COUNT_FIELDS)))
        return out

    def _comm_of(self, pid: int) -> str:
        name = self.log.comms.get(pid)
        if name is None:
            try:
                with open(f"/proc/{pid}/comm", "rb") as f:
                    name = maps.comm(f.read().rstrip(b"\n"))
            except OSError:
                name = ""
            self.log.comms[pid] = name
        return name

    def _read_lost(self) -> Tuple[int, ...]:
        if self._bpf is None:
            return (0,) * len(LOST_KINDS)
        return tuple(maps.percpu_totals(self._bpf[b"lost"])[:len(LOST_KINDS)])

    def _delete(self, pids: Sequence[int]) -> None:
        table = self._bpf[b"counts"]
        for pid in pids:
            try:
                del table[table.Key(pid)]
            except KeyError:
                pass

    def _read(self) -> ProcsSnapshot:
        self.events.drain()
        now = time.monotonic()
        interval = now - self._last
        entries = self._entries()
        self._reads += 1
        # Entries whose exit was not counted (filtered out, or it ended
        # before bpftop started counting it) are found by a look in /proc
        # every few reads, so they cannot fill the kernel's table.
        ended = frozenset(procfs.exited(e[0] for e in entries)) if self._reads % GONE_EVERY == 0 else frozenset()
        rows, gone = self.counts.update(entries, self.log.comms, ended)
        self._delete(gone)
        self._forget_comms(rows)
        t = self.log.take()
        lost_now = self._read_lost()
        lost = tuple(n - b for n, b in zip(lost_now, self._lost_base))
        iv = dict(zip(COUNT_FIELDS, self.counts.interval))
        snap = ProcsSnapshot(
            interval_s=interval,
            taken_at=time.time(),
            hook=self.hook,
            since=t.since,
            processes=rows,
            short_lived=short_lived(t.exited_now, interval),
            execs=t.execs,
            exits=t.exits,
            opens=t.opens,
            signals=t.signals,
            n_execs=iv["execs"],
            n_exits=iv["exits"],
            n_forks=iv["forks"],
            n_opens=iv["opens"],
            n_open_fails=iv["open_fails"],
            n_signals=iv["sig_sent"],
            lost=tuple(zip(LOST_KINDS, lost)),
            lost_new=sum(lost) - self._lost_prev,
            buffer=(EventBuffer.RING if self.events.ring else EventBuffer.PERF).value,
            pid_filter=self.filter.pids,
            pid_exclude=self.filter.exclude,
            uid_filter=self.uids.uids,
            uid_exclude=self.uids.exclude,
        )
        self._lost_prev = sum(lost)
        self._last = now
        return snap

    def _forget_comms(self, rows: Sequence[Any]) -> None:
        """The name memo keeps live processes and the ones in the table."""
        comms = self.log.comms
        if len(comms) > 4 * MAX_PROCS:
            keep = {r.pid for r in rows}
            for pid in procfs.exited(pid for pid in comms if pid not in keep):
                del comms[pid]
