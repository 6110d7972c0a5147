"""Disk collector: block I/O latency histograms (log2, microseconds) per disk
and per operation, with counts and bytes, like bcc's biolatency -D -F.

Kernel counters are cumulative; each ``collect()`` reports the difference
since the previous one, so reading never races with resetting. The largest
latency of each interval is kept per epoch (see disk.c), the only figure
the kernel resets.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..bpf import btf, ladder, loader, maps, system
from ..model import HookKind
from ..model.disk import NSLOTS, OPS, DiskRow, DiskSnapshot, OpStats
from . import disknames
from .base import Collector

MAX_INFLIGHT = 16384
MAX_STAT_KEYS = 4096
MAX_FILTER_DEVS = 256
# A start older than this never saw its completion (the kernel skipped our
# program for it): forgotten, and never matched with a later completion.
# The block layer's default request timeout: a request still out after it
# has been timed out and retried as another.
STALE_NS = 30 * 10**9

CTL_DISK_MODE, CTL_OP_MASK, CTL_EPOCH, CTL_MAX_AGE = 0, 1, 2, 3

# struct request and what leads from it to the disk's number, for the raw
# tracepoint rung: (define, struct, member, size the C reads).
RQ_MEMBERS = (
    ("RQ_Q", "request", "q", 8),
    ("RQ_CMD_FLAGS", "request", "cmd_flags", 4),
    ("RQ_DATA_LEN", "request", "__data_len", 4),
    ("Q_DISK", "request_queue", "disk", 8),
    ("GD_MAJOR", "gendisk", "major", 4),
    ("GD_FIRST_MINOR", "gendisk", "first_minor", 4),
)
# The idle mark is taken this much before the device's count is read: a
# request whose issue event has fired but which the block layer has not yet
# marked in flight must not fall before it.
IDLE_MARGIN_NS = 10**6


def rq_offsets() -> Tuple[Dict[str, int], str]:
    """The raw tracepoint rung's offsets from the kernel's BTF, or why not."""
    if not system.btf_available():
        return {}, "no kernel BTF (/sys/kernel/btf/vmlinux): the layout of struct request is unknown"
    try:
        found = btf.members(tuple((struct, member) for _, struct, member, _ in RQ_MEMBERS))
    except btf.BtfError as e:
        return {}, str(e)
    out = {}
    for define, struct, member, size in RQ_MEMBERS:
        got = found[(struct, member)]
        if got is None or got[1] != size:
            return {}, f"struct {struct} has no {size}-byte member {member} in this kernel's BTF"
        out[define] = got[0]
    return out, ""


def is_completion_program(name: str) -> bool:
    """Programs whose skipped runs are completions not counted."""
    return "block_rq_complete" in name or name.endswith(("kp_done", "raw_done"))
MODE_ALL, MODE_ONLY, MODE_EXCEPT = 0, 1, 2

Key = Tuple[int, int]  # (kernel dev, op index)


@dataclass(frozen=True)
class Counter:
    """One (disk, op)'s cumulative kernel counters, summed over CPUs."""

    ios: int = 0
    bytes: int = 0
    timed: int = 0
    total_ns: int = 0
    slots: Tuple[int, ...] = (0,) * NSLOTS

    def minus(self, other: "Counter") -> "Counter":
        return Counter(
            self.ios - other.ios,
            self.bytes - other.bytes,
            self.timed - other.timed,
            self.total_ns - other.total_ns,
            tuple(a - b for a, b in zip(self.slots, other.slots)),
        )


def sum_percpu(values: Iterable[Any], epoch: int) -> Tuple[Counter, Optional[int]]:
    """Sum one key's per-CPU values; also the largest latency any CPU saw in
    the interval of ``epoch`` (None when none did)."""
    ios = nbytes = timed = total = 0
    slots = [0] * NSLOTS
    top: Optional[int] = None
    e = epoch & 1
    for v in values:
        ios += v.ios
        nbytes += v.bytes
        timed += v.timed
        total += v.total_ns
        for i in range(NSLOTS):
            slots[i] += v.slots[i]
        if v.max_epoch[e] == epoch and (top is None or v.max_ns[e] > top):
            top = v.max_ns[e]
    return Counter(ios, nbytes, timed, total, tuple(slots)), top


def op_stats(op: int, c: Counter, max_ns: Optional[int]) -> OpStats:
    return OpStats(OPS[op], c.ios, c.bytes, c.timed, c.total_ns, max_ns if c.timed else None, c.slots)


def disk_rows(
    current: Dict[Key, Counter],
    base: Dict[Key, Counter],
    maxes: Dict[Key, Optional[int]],
    devs: Iterable[int],
    names: disknames.BlockDevices,
    in_flight: Dict[int, int],
) -> Tuple[DiskRow, ...]:
    """Rows for ``devs``: counters minus ``base``, busiest disk first."""
    rows = []
    for dev in devs:
        ops = []
        for (d, op), cur in sorted(current.items()):
            if d != dev:
                continue
            delta = cur.minus(base.get((d, op), Counter()))
            if delta.ios or delta.timed or delta.bytes:
                ops.append(op_stats(op, delta, maxes.get((d, op))))
        rows.append(DiskRow(names.name(dev), disknames.majmin(dev), tuple(ops), in_flight.get(dev, 0)))
    rows.sort(key=lambda r: (-r.ios, r.disk))
    return tuple(rows)


def device_in_flight(dev: int) -> Optional[int]:
    """The block layer's own count of requests in flight on a disk."""
    try:
        with open(f"/sys/dev/block/{dev >> 20}:{dev & 0xFFFFF}/inflight") as f:
            return sum(int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None


def _minus(a: Optional[int], b: Optional[int]) -> Optional[int]:
    return None if a is None or b is None else a - b


class DiskCollector(Collector[DiskSnapshot]):
    tab = "disk"
    title = "Disk"

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
        self.disk_filter: Tuple[Tuple[str, int], ...] = ()
        self.disk_exclude = False
        self.op_filter: Tuple[str, ...] = ()
        self.op_exclude = False
        self.set_disk_filter(disks, disk_exclude)
        self.set_op_filter(ops, op_exclude)
        self._epoch = 1
        self._base: Dict[Key, Counter] = {}
        self._prev: Dict[Key, Counter] = {}
        self._cum_max: Dict[Key, Optional[int]] = {}
        self._base_time = self._last = time.monotonic()
        self._idle_pending: Dict[int, int] = {}
        self._stale_purged = 0
        self._base_loss = self._prev_loss = (0, 0, 0)

    # -- ladder -----------------------------------------------------------
    def _defines(self, kprobes: bool, io_start: bool = False, acct_start_underscored: bool = False,
                 done_underscored: bool = False) -> Dict[str, Any]:
        return {
            "USE_KPROBES": kprobes,
            "QUEUED": self.queued,
            "START_IO_START": io_start,
            "KP_ACCT_START_UNDERSCORED": acct_start_underscored,
            "KP_DONE_UNDERSCORED": done_underscored,
            "NSLOTS": NSLOTS,
            "MAX_INFLIGHT": MAX_INFLIGHT,
            "MAX_STAT_KEYS": MAX_STAT_KEYS,
            "MAX_FILTER_DEVS": MAX_FILTER_DEVS,
        }

    def strategies(self) -> List[ladder.Strategy]:
        done = ("block:block_rq_issue", "block:block_rq_complete")
        if not self.queued:
            return [
                ladder.Strategy(
                    "block_rq raw tracepoints", HookKind.RAW_TRACEPOINT,
                    ("block_rq_issue", "block_rq_complete", "block_rq_requeue"),
                    lambda: self._check_raw(("block_rq_issue", "block_rq_complete", "block_rq_requeue")),
                    lambda: self._load_raw(io_start=False),
                ),
                ladder.Strategy(
                    "block_rq tracepoints", HookKind.TRACEPOINT, done + ("block:block_rq_requeue",),
                    lambda: self._check_tp(("block_rq_issue", "block_rq_complete", "block_rq_requeue")),
                    lambda: self._load_tp(io_start=False),
                ),
                ladder.Strategy(
                    "kprobes", HookKind.KPROBE, ("blk_mq_start_request", "[__]blk_account_io_done"),
                    self._check_kprobes, self._load_kprobes,
                ),
            ]
        return [
            ladder.Strategy(
                "block_io_start + block_rq raw tracepoints", HookKind.RAW_TRACEPOINT,
                ("block_io_start", "block_rq_issue", "block_rq_complete"),
                lambda: self._check_raw(("block_io_start", "block_rq_issue", "block_rq_complete")),
                lambda: self._load_raw(io_start=True),
            ),
            ladder.Strategy(
                "block_rq_insert + block_rq raw tracepoints", HookKind.RAW_TRACEPOINT,
                ("block_rq_insert", "block_rq_issue", "block_rq_complete"),
                lambda: self._check_raw(("block_rq_insert", "block_rq_issue", "block_rq_complete")),
                lambda: self._load_raw(io_start=False),
            ),
            ladder.Strategy(
                "block_io_start + block_rq tracepoints", HookKind.TRACEPOINT, ("block:block_io_start",) + done,
                lambda: self._check_tp(("block_io_start", "block_rq_issue", "block_rq_complete")),
                lambda: self._load_tp(io_start=True),
            ),
            ladder.Strategy(
                "block_rq_insert + block_rq tracepoints", HookKind.TRACEPOINT, ("block:block_rq_insert",) + done,
                lambda: self._check_tp(("block_rq_insert", "block_rq_issue", "block_rq_complete")),
                lambda: self._load_tp(io_start=False),
            ),
            ladder.Strategy(
                "kprobes", HookKind.KPROBE,
                ("[__]blk_account_io_start", "blk_mq_start_request", "[__]blk_account_io_done"),
                self._check_kprobes, self._load_kprobes,
            ),
        ]

    @staticmethod
    def _check_tp(events: Sequence[str]) -> str:
        missing = [e for e in events if not system.tracepoint_exists("block", e)]
        if missing:
            return f"tracepoint block:{missing[0]} not found" + (
                " (block_io_start arrived in Linux 6.5)" if missing[0] == "block_io_start" else ""
            )
        return ""

    def _check_raw(self, events: Sequence[str]) -> str:
        why = self._check_tp(events)
        if why:
            return why
        bcc = loader.import_bcc()
        with loader.BCC_LOCK:
            if not bcc.BPF.support_raw_tracepoint():
                return "kernel has no raw tracepoints (before 4.17)"
        return rq_offsets()[1]

    def _load_raw(self, io_start: bool) -> Any:
        offsets, why = rq_offsets()
        if why:
            raise RuntimeError(why)
        defines = dict(self._defines(kprobes=False, io_start=io_start), USE_RAW_TP=True, **offsets)
        bpf = loader.compile_program("disk", defines)
        attach = [("block_rq_issue", "bpftop_disk_raw_issue"), ("block_rq_complete", "bpftop_disk_raw_done")]
        if self.queued:
            attach.append(("block_io_start" if io_start else "block_rq_insert", "bpftop_disk_raw_queue"))
        else:
            attach.append(("block_rq_requeue", "bpftop_disk_raw_requeue"))
        try:
            with loader.BCC_LOCK:
                for tp, fn in attach:
                    bpf.attach_raw_tracepoint(tp=tp.encode(), fn_name=fn.encode())
        except Exception:
            loader.close_program(bpf)
            raise
        return bpf

    def _load_tp(self, io_start: bool) -> Any:
        return loader.compile_program("disk", self._defines(kprobes=False, io_start=io_start))

    @staticmethod
    def _kallsyms() -> set:
        wanted = {"blk_mq_start_request", "__blk_account_io_start", "blk_account_io_start",
                  "__blk_account_io_done", "blk_account_io_done"}
        found = set()
        try:
            with open("/proc/kallsyms") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2] in wanted:
                        found.add(parts[2])
        except OSError:
            pass
        return found

    def _kprobe_targets(self) -> Tuple[str, Optional[str], str]:
        syms = self._kallsyms()
        done = next((f for f in ("__blk_account_io_done", "blk_account_io_done") if f in syms), "")
        start = next((f for f in ("__blk_account_io_start", "blk_account_io_start") if f in syms), None)
        return ("blk_mq_start_request" if "blk_mq_start_request" in syms else ""), start, done

    def _check_kprobes(self) -> str:
        ok, why = system.kprobes_available()
        if not ok:
            return why
        headers = system.kernel_headers()
        if not headers.matches_running:
            return (
                "reads struct request, whose layout differs between kernels: needs headers for the "
                f"running kernel ({headers.version or 'none'} installed)"
            )
        issue, start, done = self._kprobe_targets()
        if not issue:
            return "blk_mq_start_request is not a kernel symbol here (inlined or renamed)"
        if not done:
            return "neither __blk_account_io_done nor blk_account_io_done is a kernel symbol here (inlined)"
        if self.queued and not start:
            return "neither __blk_account_io_start nor blk_account_io_start is a kernel symbol here (inlined)"
        gone = system.not_traceable([f for f in (issue, done, start if self.queued else None) if f])
        if gone:
            return f"kernel function {gone[0]} is not traceable (notrace, or only inlined copies)"
        return ""

    def _load_kprobes(self) -> Any:
        issue, start, done = self._kprobe_targets()
        bpf = loader.compile_program("disk", self._defines(kprobes=True))
        try:
            bpf.attach_kprobe(event=issue.encode(), fn_name=b"bpftop_disk_kp_issue")
            bpf.attach_kprobe(event=done.encode(), fn_name=b"bpftop_disk_kp_done")
            if self.queued and start:
                bpf.attach_kprobe(event=start.encode(), fn_name=b"bpftop_disk_kp_queue")
        except Exception:
            loader.close_program(bpf)
            raise
        return bpf

    def _on_loaded(self) -> None:
        self._set_ctl(CTL_EPOCH, self._epoch)
        self._set_ctl(CTL_MAX_AGE, STALE_NS)
        self._idle_pending = {}
        self._stale_purged = 0
        self._write_filters()
        self._baseline()

    # -- run-time filters ---------------------------------------------------
    def set_disk_filter(self, names: Sequence[str], exclude: bool = False) -> None:
        """Only these disks (or all but them); names as in /sys/block
        (``vda``), ``/dev/vda`` or ``MAJ:MIN``. Applied in the kernel, no
        recompiling. Raises ValueError on an unknown name; nothing changes then."""
        if isinstance(names, str):
            names = [names]
        resolved = self.names.resolve(names)
        if len(resolved) > MAX_FILTER_DEVS:
            raise ValueError(f"at most {MAX_FILTER_DEVS} disks can be filtered in the kernel")
        with self._lock:
            self.disk_filter = resolved
            self.disk_exclude = exclude and bool(resolved)
            if self._bpf is not None:
                self._write_filters()
                self._baseline()

    def set_op_filter(self, ops: Sequence[str], exclude: bool = False) -> None:
        """Only these operations (read, write, flush, discard, other), or all
        but them. Raises ValueError on an unknown one; nothing changes then."""
        if isinstance(ops, str):
            ops = [ops]
        wanted = []
        for op in ops:
            name = op.strip().lower() if isinstance(op, str) else op
            if name not in OPS:
                raise ValueError(f"no operation {op!r} (operations: {', '.join(OPS)})")
            wanted.append(name)
        chosen = tuple(o for o in OPS if o in wanted)
        if exclude and len(chosen) == len(OPS):
            raise ValueError("excluding every operation would leave nothing to count")
        with self._lock:
            self.op_filter = chosen
            self.op_exclude = exclude and bool(chosen)
            if self._bpf is not None:
                self._write_filters()
                self._baseline()

    def op_mask(self) -> int:
        if not self.op_filter:
            return 0
        bits = sum(1 << OPS.index(o) for o in self.op_filter)
        return ((1 << len(OPS)) - 1) & ~bits if self.op_exclude else bits

    def _set_ctl(self, index: int, value: int) -> None:
        self._bpf[b"ctl"][ctypes.c_int(index)] = ctypes.c_uint64(value)

    def _write_filters(self) -> None:
        # Open up first, then narrow: while the set is rewritten the program
        # sees "all", never a half-written "only".
        self._set_ctl(CTL_DISK_MODE, MODE_ALL)
        devs = self._bpf[b"filter_devs"]
        devs.clear()
        for _, dev in self.disk_filter:
            devs[devs.Key(dev)] = devs.Leaf(1)
        mode = MODE_ALL if not self.disk_filter else (MODE_EXCEPT if self.disk_exclude else MODE_ONLY)
        self._set_ctl(CTL_DISK_MODE, mode)
        self._set_ctl(CTL_OP_MASK, self.op_mask())

    def _wanted(self, dev: int) -> bool:
        if not self.disk_filter:
            return True
        listed = any(dev == d for _, d in self.disk_filter)
        return listed != self.disk_exclude

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
        at_completion, at_start = (int(sum(self._bpf[b"stale"].getvalue(i))) for i in (0, 1))
        stale = self._stale_purged + at_completion + at_start
        misses = self.recursion_misses()
        starts_missed: Optional[int] = 0
        completions_missed: Optional[int] = 0
        for name, n in misses.items():
            if n is None or not self.skips_counted:
                starts_missed = completions_missed = None
                break
            if is_completion_program(name):
                completions_missed += n
            else:
                starts_missed += n
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
        devs = sorted(d for d in seen if self._wanted(d))
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
            lost=_minus(loss[0], self._prev_loss[0]),
            lost_total=_minus(loss[0], self._base_loss[0]),
            lost_starts=_minus(loss[1], self._prev_loss[1]),
            stale=loss[2] - self._prev_loss[2],
        )
        self._prev = counters
        self._prev_loss = loss
        self._last = now
        return snapshot
