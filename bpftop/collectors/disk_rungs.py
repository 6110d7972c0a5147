"""The disk collector's hook ladder: which block-layer hooks this kernel
has, the typed -D flags for each rung, and loading it. Reading the maps is
disk.py's; the counters' arithmetic is disk_counts.py's."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..bpf import btf, ladder, loader, system
from ..model import HookKind
from ..model.disk import NSLOTS

MAX_INFLIGHT = 16384
MAX_STAT_KEYS = 4096
MAX_FILTER_DEVS = 256

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
# The kprobe rung's candidates, newest name first.
KP_ISSUE = "blk_mq_start_request"
KP_START = ("__blk_account_io_start", "blk_account_io_start")
KP_DONE = ("__blk_account_io_done", "blk_account_io_done")
system.want_symbols((KP_ISSUE,) + KP_START + KP_DONE)


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


def check_tp(events: Sequence[str]) -> str:
    missing = [e for e in events if not system.tracepoint_exists("block", e)]
    if missing:
        return f"tracepoint block:{missing[0]} not found" + (
            " (block_io_start arrived in Linux 6.5)" if missing[0] == "block_io_start" else ""
        )
    return ""


def check_raw(events: Sequence[str]) -> str:
    why = check_tp(events)
    if why:
        return why
    if not system.raw_tracepoints_supported():
        return "kernel has no raw tracepoints (before 4.17)"
    return rq_offsets()[1]


def kprobe_targets() -> Tuple[str, Optional[str], str]:
    """(issue, accounting start or None, completion) kernel functions; ""
    where the kernel has none."""
    syms = system.kernel_symbols((KP_ISSUE,) + KP_START + KP_DONE, text_only=False)
    done = next((f for f in KP_DONE if f in syms), "")
    start = next((f for f in KP_START if f in syms), None)
    return (KP_ISSUE if KP_ISSUE in syms else ""), start, done


def check_kprobes(queued: bool) -> str:
    ok, why = system.kprobes_available()
    if not ok:
        return why
    headers = system.kernel_headers()
    if not headers.matches_running:
        return (
            "reads struct request, whose layout differs between kernels: needs headers for the "
            f"running kernel ({headers.version or 'none'} installed)"
        )
    issue, start, done = kprobe_targets()
    if not issue:
        return "blk_mq_start_request is not a kernel symbol here (inlined or renamed)"
    if not done:
        return "neither __blk_account_io_done nor blk_account_io_done is a kernel symbol here (inlined)"
    if queued and not start:
        return "neither __blk_account_io_start nor blk_account_io_start is a kernel symbol here (inlined)"
    gone = system.not_traceable([f for f in (issue, done, start if queued else None) if f])
    if gone:
        return f"kernel function {gone[0]} is not traceable (notrace, or only inlined copies)"
    return ""


def defines(queued: bool, kprobes: bool, io_start: bool = False) -> Dict[str, Any]:
    return {
        "USE_KPROBES": kprobes,
        "QUEUED": queued,
        "START_IO_START": io_start,
        "NSLOTS": NSLOTS,
        "MAX_INFLIGHT": MAX_INFLIGHT,
        "MAX_STAT_KEYS": MAX_STAT_KEYS,
        "MAX_FILTER_DEVS": MAX_FILTER_DEVS,
    }


def load_raw(queued: bool, io_start: bool) -> Any:
    offsets, why = rq_offsets()
    if why:
        raise RuntimeError(why)
    attach = [("block_rq_issue", "bpftop_disk_raw_issue"), ("block_rq_complete", "bpftop_disk_raw_done")]
    if queued:
        attach.append(("block_io_start" if io_start else "block_rq_insert", "bpftop_disk_raw_queue"))
    else:
        attach.append(("block_rq_requeue", "bpftop_disk_raw_requeue"))

    def attach_all(bpf: Any) -> None:
        for tp, fn in attach:
            bpf.attach_raw_tracepoint(tp=tp.encode(), fn_name=fn.encode())

    return loader.load("disk", dict(defines(queued, kprobes=False, io_start=io_start), USE_RAW_TP=True, **offsets),
                       attach_all)


def load_tp(queued: bool, io_start: bool) -> Any:
    return loader.load("disk", defines(queued, kprobes=False, io_start=io_start))


def load_kprobes(queued: bool) -> Any:
    issue, start, done = kprobe_targets()

    def attach(bpf: Any) -> None:
        bpf.attach_kprobe(event=issue.encode(), fn_name=b"bpftop_disk_kp_issue")
        bpf.attach_kprobe(event=done.encode(), fn_name=b"bpftop_disk_kp_done")
        if queued and start:
            bpf.attach_kprobe(event=start.encode(), fn_name=b"bpftop_disk_kp_queue")

    return loader.load("disk", defines(queued, kprobes=True), attach)


def _tracepoint_rungs(queued: bool, label: str, events: Tuple[str, ...], io_start: bool) -> List[ladder.Strategy]:
    """The raw and the classic tracepoint rung on the same events."""
    return [
        ladder.Strategy(
            f"{label}raw tracepoints", HookKind.RAW_TRACEPOINT, events,
            lambda: check_raw(events), lambda: load_raw(queued, io_start),
        ),
        ladder.Strategy(
            f"{label}tracepoints", HookKind.TRACEPOINT, tuple(f"block:{e}" for e in events),
            lambda: check_tp(events), lambda: load_tp(queued, io_start),
        ),
    ]


def strategies(queued: bool) -> List[ladder.Strategy]:
    """The ladder: raw tracepoints (keyed by request), tracepoints (keyed
    by sector), kprobes; with ``queued``, from the time the request was
    queued, where the kernel has block_io_start first."""
    if not queued:
        raw, classic = _tracepoint_rungs(
            False, "block_rq ", ("block_rq_issue", "block_rq_complete", "block_rq_requeue"), io_start=False)
        return [raw, classic, ladder.Strategy(
            "kprobes", HookKind.KPROBE, (KP_ISSUE, "[__]blk_account_io_done"),
            lambda: check_kprobes(False), lambda: load_kprobes(False),
        )]
    raw_io, tp_io = _tracepoint_rungs(
        True, "block_io_start + block_rq ", ("block_io_start", "block_rq_issue", "block_rq_complete"), io_start=True)
    raw_ins, tp_ins = _tracepoint_rungs(
        True, "block_rq_insert + block_rq ", ("block_rq_insert", "block_rq_issue", "block_rq_complete"), io_start=False)
    return [raw_io, raw_ins, tp_io, tp_ins, ladder.Strategy(
        "kprobes", HookKind.KPROBE, ("[__]blk_account_io_start", KP_ISSUE, "[__]blk_account_io_done"),
        lambda: check_kprobes(True), lambda: load_kprobes(True),
    )]
