"""Syscall number -> name for this machine's architecture.

The system's own uapi header wins (it knows syscalls newer than our table);
then the table shipped with bpftop; then BCC's; then ``syscall_<nr>``.
"""

from __future__ import annotations

import functools
import glob
import platform
import re
from typing import Dict

from .syscall_table_x86_64 import X86_64

_DEFINE = re.compile(r"#define\s+__NR_(\w+)\s+(\d+)\b")


def parse_unistd(text: str) -> Dict[int, str]:
    return {int(nr): name for name, nr in _DEFINE.findall(text)}


def _header_table(machine: str) -> Dict[int, str]:
    names = {"x86_64": "unistd_64.h", "aarch64": "unistd.h"}
    header = names.get(machine)
    if header is None:
        return {}
    for path in glob.glob(f"/usr/include/*/asm/{header}") + [f"/usr/include/asm/{header}"]:
        if machine == "x86_64" and "x86_64" not in path and "/usr/include/asm/" not in path:
            continue
        try:
            with open(path) as f:
                table = parse_unistd(f.read())
        except OSError:
            continue
        if table:
            return table
    return {}


def _bcc_table() -> Dict[int, str]:
    try:
        from bcc.syscall import syscalls
    except Exception:
        return {}
    return {int(nr): (name.decode() if isinstance(name, bytes) else str(name)) for nr, name in syscalls.items()}


@functools.cache
def table(machine: str = "") -> Dict[int, str]:
    machine = machine or platform.machine()
    merged: Dict[int, str] = dict(_bcc_table())
    if machine == "x86_64":
        merged.update(X86_64)
    merged.update(_header_table(machine))
    return merged


def name(nr: int) -> str:
    return table().get(nr) or f"syscall_{nr}"


def number(syscall: str) -> int:
    """The number of a syscall by name; KeyError when this machine has none."""
    for nr, n in table().items():
        if n == syscall:
            return nr
    raise KeyError(syscall)
