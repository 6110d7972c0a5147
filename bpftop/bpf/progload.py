"""BPF_PROG_LOAD and BPF_BTF_LOAD through bpf(2), for programs rebuilt from
the compiled-object cache.

BCC's own loader passes each program its function's BTF (``func_info``),
which is where bpftool and other tools read the program's full name: the
kernel keeps only 15 characters of it, and BCC cuts a ``tracepoint__``
prefix off those. libbcc's ``bcc_prog_load`` takes no BTF, so a cached
program loaded through it would show another name than a compiled one;
this loads it as BCC does, with the name cut the same way and the same
function record.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct
from typing import Optional

from . import objinfo

BPF_PROG_LOAD = 5
BPF_BTF_LOAD = 18
BPF_BTF_GET_INFO = objinfo.BPF_OBJ_GET_INFO_BY_FD
# The prefixes libbcc cuts from a program's name before the kernel's
# 15 characters (bcc_prog_load_xattr).
_CUT = (b"kprobe__", b"kretprobe__", b"tracepoint__", b"raw_tracepoint__")
_NAME_LEN = 15
_LOG_SIZE = 4 * 1024 * 1024


def kernel_name(func_name: bytes) -> bytes:
    for prefix in _CUT:
        if func_name.startswith(prefix):
            func_name = func_name[len(prefix):]
            break
    return func_name[:_NAME_LEN]


class _ProgLoadAttr(ctypes.Structure):
    # union bpf_attr, BPF_PROG_LOAD's part up to attach_btf_id (5.5);
    # older kernels accept the longer attr while its tail is zero.
    _fields_ = [
        ("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32), ("prog_btf_fd", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64), ("func_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32), ("line_info", ctypes.c_uint64), ("line_info_cnt", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
    ]


class _BtfLoadAttr(ctypes.Structure):
    _fields_ = [("btf", ctypes.c_uint64), ("btf_log_buf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32),
                ("btf_log_size", ctypes.c_uint32), ("btf_log_level", ctypes.c_uint32)]


class _BtfInfo(ctypes.Structure):
    _fields_ = [("btf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32), ("id", ctypes.c_uint32)]


def _call(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(2); on EPERM from a kernel that still charges locked memory
    (before 5.11) the limit is raised once and the call retried, as BCC
    does."""
    buf = (ctypes.c_uint32 * (ctypes.sizeof(attr) // 4))()
    ctypes.memmove(buf, ctypes.addressof(attr), ctypes.sizeof(attr))
    try:
        return objinfo.bpf(cmd, buf)
    except objinfo.BpfError as e:
        if e.errno != errno.EPERM:
            raise
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if soft == resource.RLIM_INFINITY:
            raise
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            raise e from None
        return objinfo.bpf(cmd, buf)


def load_btf(raw: bytes) -> int:
    data = ctypes.create_string_buffer(raw, len(raw))
    attr = _BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(raw))
    return _call(BPF_BTF_LOAD, attr)


def btf_bytes(fd: int) -> bytes:
    """The raw BTF a BTF object's fd holds."""
    info = _BtfInfo()
    objinfo.obj_info(fd, info)
    size = info.btf_size
    data = ctypes.create_string_buffer(size)
    info = _BtfInfo(btf=ctypes.addressof(data), btf_size=size)
    objinfo.obj_info(fd, info)
    return data.raw[:size]


def load_program(prog_type: int, func_name: bytes, code: bytes, license: bytes, kern_version: int,
                 btf_fd: Optional[int] = None, func_type_id: Optional[int] = None,
                 attach_type: int = 0, attach_btf_id: int = 0) -> int:
    """The loaded program's fd. On failure the verifier's log goes to fd
    2, as BCC's loader writes it (the compile's output keeper holds fd 2
    then), and OSError is raised. ``attach_type`` and ``attach_btf_id``:
    what a BTF-typed program is built for (a type id in the kernel's own
    BTF)."""
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license)
    attr = _ProgLoadAttr(prog_type=prog_type, insn_cnt=len(code) // 8, insns=ctypes.addressof(insns),
                         license=ctypes.addressof(lic), kern_version=kern_version,
                         prog_name=kernel_name(func_name), expected_attach_type=attach_type,
                         attach_btf_id=attach_btf_id)
    record = None
    if btf_fd is not None and func_type_id:
        record = ctypes.create_string_buffer(struct.pack("<II", 0, func_type_id), 8)
        attr.prog_btf_fd = btf_fd
        attr.func_info_rec_size = 8
        attr.func_info = ctypes.addressof(record)
        attr.func_info_cnt = 1
    try:
        return _call(BPF_PROG_LOAD, attr)
    except objinfo.BpfError as e:
        if e.errno in (errno.EPERM, errno.EFAULT, errno.E2BIG):
            raise
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ctypes.addressof(log)
        try:
            return _call(BPF_PROG_LOAD, attr)  # a load that passes with a log (it should not)
        except objinfo.BpfError:
            text = log.value.decode("utf-8", "replace")
            if text:
                os.write(2, f"bpf: Failed to load program: {e.strerror}\n{text}\n".encode())
        raise e from None
    finally:
        del record
