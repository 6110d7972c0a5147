"""Compile and load the packaged BPF C sources with typed -D flags.

User text never becomes C: a source is a package file, and the only thing
that varies is a set of ``NAME=int`` definitions checked here.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any, Mapping, Union

from ..errors import FeatureError
from . import system

_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

# BCC's compiler is not safe to drive from several threads at once.
# BCC is not thread-safe: its compiler, its symbol caches (behind
# support_raw_tracepoint, support_kfunc, ksym lookups) and cleanup crash or
# corrupt memory when two collector threads use them at once. Every BCC call
# outside the hot read path goes through this lock.
BCC_LOCK = threading.RLock()


def define_flags(defines: Mapping[str, Union[int, bool]]) -> list:
    """``{"NR_SYSCALLS": 512, "LATENCY": True}`` -> ``["-DNR_SYSCALLS=512", "-DLATENCY=1"]``.

    Names must be upper-case identifiers and values integers (bools count as
    0/1); anything else is a programming error, raised as ValueError. A false
    feature flag is left out so that ``#ifdef`` sees it as off.
    """
    flags = []
    for name, value in sorted(defines.items()):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"bad BPF define name {name!r}")
        if isinstance(value, bool):
            if value:
                flags.append(f"-D{name}=1")
            continue
        if not isinstance(value, int):
            raise ValueError(f"BPF define {name} must be an int, not {type(value).__name__}")
        flags.append(f"-D{name}={int(value)}")
    return flags


def source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.c").read_text()


def import_bcc() -> Any:
    try:
        import bcc  # noqa: F401
    except ImportError as e:
        raise FeatureError(
            f"the BCC Python module is not importable ({e}); install the distribution's "
            "python3-bpfcc (not the unrelated 'bcc' from the package index), or run: sudo make run"
        ) from None
    return bcc


def compile_program(name: str, defines: Mapping[str, Union[int, bool]]) -> Any:
    """Compile ``bpftop/bpf/<name>.c``; returns the BCC ``BPF`` object.

    BCC attaches TRACEPOINT_PROBE and RAW_TRACEPOINT_PROBE functions while
    loading; other functions are attached by the caller.
    """
    system.check_privileges()
    system.ensure_tracefs()
    bcc = import_bcc()
    text = source(name)
    flags = define_flags(defines)
    with BCC_LOCK:
        return bcc.BPF(text=text.encode(), cflags=flags)


def close_program(bpf: Any) -> None:
    """Detach every probe and free the programs and maps of a BPF object now,
    rather than whenever it is garbage-collected."""
    if bpf is not None:
        with BCC_LOCK:
            bpf.cleanup()
