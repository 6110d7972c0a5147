"""BTF-typed raw tracepoints ("tp_btf", 5.5+), which BCC does not load.

A plain raw tracepoint hands its program untyped u64 arguments, so every
read through a pointer argument is a ``bpf_probe_read_kernel`` call; on
sys_exit that one read of the syscall number was a third of the syscalls
program's time. Loaded as a tracing program against the tracepoint's
``btf_trace_<name>`` type, the same instructions may load through the
pointer directly: the verifier knows its type and checks the offset.

The program is compiled by BCC like any other (its map fds are in its
instructions), then loaded and attached here through bpf(2). It is filed
in the BCC object as BCC files its own, so BCC's cleanup releases it.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Dict, Optional, Tuple

from . import objinfo, progload
from .btf import BtfError, typedef_ids

BPF_PROG_TYPE_TRACING = 26
BPF_TRACE_RAW_TP = 23
BPF_RAW_TRACEPOINT_OPEN = 17


class BtfTracepointError(Exception):
    pass


def type_ids(tracepoints: Tuple[str, ...]) -> Dict[str, Optional[int]]:
    """The kernel's ``btf_trace_<tracepoint>`` type id of each; None for
    one the kernel does not describe (all None without BTF). Read once per
    process (``btf.typedef_ids``): the kernel's BTF does not change while it
    runs."""
    try:
        ids = typedef_ids(tuple(f"btf_trace_{tp}" for tp in tracepoints))
    except BtfError:
        return dict.fromkeys(tracepoints)
    return {tp: ids[f"btf_trace_{tp}"] for tp in tracepoints}


def missing(tracepoints: Tuple[str, ...]) -> str:
    """Why these tracepoints cannot take BTF-typed programs here ("" when
    they can)."""
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    for tp, tid in type_ids(tracepoints).items():
        if tid is None:
            return f"the kernel's BTF does not describe raw tracepoint {tp} (before 5.5)"
    return ""


def load(bpf: Any, bcc: Any, func_name: bytes, tracepoint: str) -> Any:
    """Load ``func_name`` of the compiled ``bpf`` as a BTF-typed program of
    ``tracepoint``; returns BCC's Function for it, kept in ``bpf.funcs``."""
    if func_name in bpf.funcs:
        return bpf.funcs[func_name]
    tid = type_ids((tracepoint,))[tracepoint]
    if tid is None:
        raise BtfTracepointError(f"no BTF type for raw tracepoint {tracepoint}")
    try:
        fd = progload.load_program(BPF_PROG_TYPE_TRACING, func_name, bpf.dump_func(func_name), b"GPL", 0,
                                   attach_type=BPF_TRACE_RAW_TP, attach_btf_id=tid)
    except OSError as e:
        why = "need super-user privileges" if e.errno == errno.EPERM else os.strerror(e.errno or 0)
        raise BtfTracepointError(f"BTF-typed program {func_name.decode()} not loaded: {why}") from None
    fn = bcc.BPF.Function(bpf, func_name, fd)
    bpf.funcs[func_name] = fn
    return fn


def attach(bpf: Any, fn: Any, tracepoint: str) -> None:
    """Attach a program ``load`` made to its tracepoint; the link is kept
    where BCC keeps a raw tracepoint's, so ``detach_raw_tracepoint`` and
    BCC's cleanup release it."""
    key = tracepoint.encode()
    if key in bpf.raw_tracepoint_fds:
        raise BtfTracepointError(f"raw tracepoint {tracepoint} is already attached")
    attr = objinfo.new_attr()
    # name 0: a BTF-typed program names its tracepoint by the type it was loaded for.
    attr[2] = fn.fd
    try:
        link = objinfo.bpf(BPF_RAW_TRACEPOINT_OPEN, attr)
    except objinfo.BpfError as e:
        raise BtfTracepointError(f"raw tracepoint {tracepoint} not attached: {e.strerror}") from None
    bpf.raw_tracepoint_fds[key] = link

