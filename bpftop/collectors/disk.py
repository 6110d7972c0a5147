"""Disk collector: block I/O latency histograms (log2, microseconds) per disk
and per operation, with counts and bytes, like bcc's biolatency -D -F.

Kernel counters are cumulative; each ``collect()`` reports the difference
since the previous one, so reading never races with resetting. The largest
latency of each interval is kept per epoch (see disk.c), the only figure
the kernel resets. The ladder is in disk_rungs.py, the counters'
arithmetic in disk_counts.py.
"""

from __future__ import annotations

import ctypes
import time
from typing import Dict, List, Optional, Sequence, Tuple

from ..bpf import btf, ladder, maps
from ..model import HookKind
from ..model.disk import OPS, DiskSnapshot
from . import disk_rungs, disknames
from .base import Collector, FilterValue
from .capabilities import Capabilities, KernelField
from .disk_counts import Counter, Key, device_in_flight, disk_rows, minus_known, sum_percpu
from .disk_rungs import MAX_FILTER_DEVS, is_completion_program
from .keyfilter import KeyFilter

__all__ = ["Counter", "DiskCollector", "disk_rows"]

# A start older than this never saw its completion (the kernel skipped our
# program for it): forgotten, and never matched with a later completion.
# The block layer's default request timeout: a request still out after it
# has been timed out and retried as another.
STALE_NS = 30 * 10**9

CTL_DISK_MODE, CTL_OP_MASK, CTL_EPOCH, CTL_MAX_AGE = 0, 1, 2, 3

# The idle mark is taken this much before the device's count is read: a
# request whose issue event has fired but which the block layer has not yet
# marked in flight must not fall before it.
IDLE_MARGIN_NS = 10**6


class DevFilter(KeyFilter):
    """Disks by kernel device number (the map filter_devs; the mode is in
    ctl[CTL_DISK_MODE])."""

    what = "disk"
    limit = MAX_FILTER_DEVS


class DiskCollector(Collector[DiskSnapshot]):
    tab = "disk"
    title = "Disk"
    CAPABILITIES = Capabilities(kernel_filters=("disk", "op"))

    def __init__(
        self,
        queued: bool = False,
        disks: Sequence[str] = (),
        disk_exclude: bool = False,
        ops: Sequence[str] = (),
        op_exclude: bool = False,
    ) -> None:
        super().__init__()
        self.queued = queued
        self.names = disknames.scan()
        self.disk_filter: Tuple[Tuple[str, int], ...] = ()  # (name as given, kernel dev)
        self.devs = self.key_filters["disk"] = DevFilter()
        self.op_filter: Tuple[str, ...] = ()
        self.op_exclude = False
        self.set_kernel_filter("disk", disks, disk_exclude)
        self.set_kernel_filter("op", ops, op_exclude)
        self._epoch = 1
        self._base: Dict[Key, Counter] = {}
        self._prev: Dict[Key, Counter] = {}
        self._cum_max: Dict[Key, Optional[int]] = {}
        self._base_time = self._last = time.monotonic()
        self._idle_pending: Dict[int, int] = {}
        self._stale_purged = 0
        self._base_loss: Tuple[Optional[int], Optional[int], int] = (0, 0, 0)
        self._prev_loss: Tuple[Optional[int], Optional[int], int] = self._base_loss

    # -- ladder -----------------------------------------------------------
    def strategies(self) -> List[ladder.Strategy]:
        return disk_rungs.strategies(self.queued)

    def _on_loaded(self) -> None:
        self._set_ctl(CTL_EPOCH, self._epoch)
        self._set_ctl(CTL_MAX_AGE, STALE_NS)
        self._idle_pending = {}
        self._stale_purged = 0
        self.devs.bind(self._bpf[b"ctl"], self._bpf[b"filter_devs"], CTL_DISK_MODE, ctypes.c_uint64)
        self._set_ctl(CTL_OP_MASK, self.op_mask())
        self._baseline()

    # -- run-time filters ---------------------------------------------------
    @property
    def disk_exclude(self) -> bool:
        return self.devs.exclude

    def _set_kernel_filter(self, field: KernelField, values: Sequence[FilterValue], exclude: bool) -> None:
        """disk: names as in /sys/block (``vda``), ``/dev/vda`` or
        ``MAJ:MIN``; op: read, write, flush, discard, other. ValueError on an
        unknown one; nothing changes then."""
        if field == "disk":
            resolved = self.names.resolve(list(values))
            if len(resolved) > MAX_FILTER_DEVS:
                raise ValueError(f"at most {MAX_FILTER_DEVS} disks can be filtered in the kernel")
            self.devs.set([dev for _, dev in resolved], exclude)
            self.disk_filter = resolved
        else:
            self._set_op_filter(values, exclude)
        if self._bpf is not None:
            self._set_ctl(CTL_OP_MASK, self.op_mask())

    def _set_op_filter(self, ops: Sequence[FilterValue], exclude: bool) -> None:
        wanted = []
        for op in ops:
            name = op.strip().lower() if isinstance(op, str) else op
            if name not in OPS:
                raise ValueError(f"no operation {op!r} (operations: {', '.join(OPS)})")
            wanted.append(name)
        chosen = tuple(o for o in OPS if o in wanted)
        if exclude and len(chosen) == len(OPS):
            raise ValueError("excluding every operation would leave nothing to count")
        self.op_filter = chosen
        self.op_exclude = exclude and bool(chosen)

    def op_mask(self) -> int:
        if not self.op_filter:
            return 0
        bits = sum(1 << OPS.index(o) for o in self.op_filter)
        return ((1 << len(OPS)) - 1) & ~bits if self.op_exclude else bits

    def _set_ctl(self, index: int, value: int) -> None:
        self._bpf[b"ctl"][ctypes.c_int(index)] = ctypes.c_uint64(value)

    # -- reading --------------------------------------------------------------
    def _read_counters(self) -> Tuple[Dict[Key, Counter], Dict[Key, Optional[int]]]:
        """Cumulative counters, and the largest latency of the interval that
        ends now. The epoch moves first, so completions from here on keep
        their maximum apart (one landing during the read itself may go
        unseen as a maximum; it still counts everywhere else)."""
        ended = self._epoch
        self._epoch += 1
        self._set_ctl(CTL_EPOCH, self._epoch)
        counters: Dict[Key, Counter] = {}
        maxes: Dict[Key, Optional[int]] = {}
        for key, percpu in maps.items(self._bpf[b"stats"]):
            if key.op >= len(OPS):
                continue
            c, top = sum_percpu(percpu, ended)
            counters[(key.dev, key.op)] = c
            maxes[(key.dev, key.op)] = top
        return counters, maxes

    def _in_flight(self) -> Dict[int, int]:
        """Requests started and not yet completed, per disk, by walking the
        in-flight map. Entries whose completion the kernel skipped are
        dropped: older than STALE_NS, or (issue-time starts) older than a
        moment at which the device itself had nothing in flight."""
        table = self._bpf[b"start"]
        now = time.monotonic_ns()
        # Marks at least one read old: a request the device had finished
        # by then (its state says complete) may fire its completion event a
        # little later, and must still find its start.
        marks = {} if self.queued else dict(self._idle_pending)
        out: Dict[int, int] = {}
        for key, val in maps.items(table):
            if now - val.ts > STALE_NS or val.ts < marks.get(key.dev, 0):
                try:
                    del table[key]
                    self._stale_purged += val.count
                except KeyError:
                    pass
                continue
            out[key.dev] = out.get(key.dev, 0) + val.count
        if not self.queued:
            idle = self._bpf[b"dev_idle"]
            for dev, mark in marks.items():
                try:
                    idle[idle.Key(dev)] = idle.Leaf(mark)
                except Exception:  # full: that disk keeps the age bound only
                    pass
            for dev in out:
                t0 = time.monotonic_ns()
                if device_in_flight(dev) == 0:
                    self._idle_pending[dev] = t0 - IDLE_MARGIN_NS
        return out

    @property
    def skips_counted(self) -> bool:
        """Whether the rung in use knows how many completions it missed."""
        if self._strategy is None:
            return False
        return self.keyed_by_request or btf.tracepoint_skips_counted()

    def _loss(self) -> Tuple[Optional[int], Optional[int], int]:
        """Cumulative: completions and starts the kernel skipped (None when
        it does not count them), and stale starts found.

        Keyed by request (raw tracepoints), every completion this program
        did not see leaves its start behind, found exactly once: when the
        request is started again, or dropped as stale here. That counts the
        completions the recursion guard skipped and any other the program
        never ran for (seen here: bursts of completions neither raw nor
        classic tracepoint programs ran for, with no miss counted). Keyed by
        sector, starts can be shared, so the kernel's miss counters are the
        figure, and only where it keeps them."""
        at_completion, at_start = maps.percpu_totals(self._bpf[b"stale"])[:2]
        stale = self._stale_purged + at_completion + at_start
        misses = self.recursion_misses()
        starts_missed: Optional[int] = None
        completions_missed: Optional[int] = None
        counts = {name: n for name, n in misses.items() if n is not None}
        if self.skips_counted and len(counts) == len(misses):
            completions_missed = sum(n for name, n in counts.items() if is_completion_program(name))
            starts_missed = sum(n for name, n in counts.items() if not is_completion_program(name))
        if self.keyed_by_request:
            return self._stale_purged + at_start, starts_missed, stale
        return completions_missed, starts_missed, stale

    @property
    def keyed_by_request(self) -> bool:
        return self._strategy is not None and self._strategy.kind is HookKind.RAW_TRACEPOINT

    def _baseline(self) -> None:
        """Start a new interval and a new cumulative period now: counts made
        under another filter are not the operator's to see."""
        self._base_loss = self._prev_loss = self._loss()
        self._base, _ = self._read_counters()
        self._prev = self._base
        self._cum_max = {}
        self._base_time = self._last = time.monotonic()

    def _read(self) -> DiskSnapshot:
        now = time.monotonic()
        counters, maxes = self._read_counters()
        in_flight = self._in_flight()
        loss = self._loss()
        for key, top in maxes.items():
            if top is not None:
                old = self._cum_max.get(key)
                self._cum_max[key] = top if old is None else max(old, top)
        seen = {dev for (dev, _), c in counters.items() if c.minus(self._base.get((dev, _), Counter())).ios}
        seen |= {dev for dev, n in in_flight.items() if n}
        devs = sorted(d for d in seen if self.devs.admits(d))
        if any(self.names.name(d) == disknames.majmin(d) for d in devs):
            self.names = disknames.scan()  # a disk appeared since the last scan
        snapshot = DiskSnapshot(
            interval_s=now - self._last,
            taken_at=time.time(),
            rows=disk_rows(counters, self._prev, maxes, devs, self.names, in_flight),
            cumulative=disk_rows(counters, self._base, self._cum_max, devs, self.names, in_flight),
            cumulative_s=now - self._base_time,
            queued=self.queued,
            disk_filter=tuple(name for name, _ in self.disk_filter),
            disk_exclude=self.disk_exclude,
            op_filter=self.op_filter,
            op_exclude=self.op_exclude,
            hook=self.hook,
            lost=minus_known(loss[0], self._prev_loss[0]),
            lost_total=minus_known(loss[0], self._base_loss[0]),
            lost_starts=minus_known(loss[1], self._prev_loss[1]),
            stale=loss[2] - self._prev_loss[2],
        )
        self._prev = counters
        self._prev_loss = loss
        self._last = now
        return snapshot
