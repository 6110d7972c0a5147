"""Compile and load the packaged BPF C sources with typed -D flags.

User text never becomes C: a source is a package file, and the only thing
that varies is a set of ``NAME=int`` definitions checked here.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from importlib import resources
from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import FeatureError
from . import cached_module, objcache, system

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


def include_flags() -> List[str]:
    """The package's BPF directory on the include path, for the helper
    headers the programs share (common.h, keyfilter.h)."""
    return ["-I" + os.path.dirname(os.path.abspath(__file__))]


def source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.c").read_text()


def import_bcc() -> Any:
    try:
        import bcc
    except ImportError as e:
        raise FeatureError(
            f"the BCC Python module is not importable ({e}); install the distribution's "
            "python3-bpfcc (not the unrelated 'bcc' from the package index), or run: sudo make run"
        ) from None
    return bcc


# Enough for any compile's warnings; a runaway log is cut, not kept whole.
MAX_OUTPUT = 64 * 1024


class NativeOutput:
    """What clang, BCC and libbpf wrote to fd 2 during a ``native_output_kept`` block."""

    text: str = ""


@contextlib.contextmanager
def native_output_kept(out: Optional[NativeOutput] = None) -> Iterator[NativeOutput]:
    """Keep what native code writes to fd 2 in the block (clang's warnings,
    libbpf's and the verifier's messages) instead of showing it: in batch,
    JSON or console mode it is noise on the user's stderr, and ``bpftop
    doctor -v`` shows it with the rung it came from.

    fd 2 is the whole process's, so the block holds BCC_LOCK: every compile
    and attach already runs under it, and two blocks must not interleave
    their redirections. Python's own messages do not go through fd 2 while
    bpftop runs (the command line points sys.stderr at a duplicate), so
    another thread's message is not swallowed here.
    """
    out = out if out is not None else NativeOutput()
    with BCC_LOCK, tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            raw = sink.read(MAX_OUTPUT + 1)
            text = raw[:MAX_OUTPUT].decode("utf-8", "replace")
            out.text = text + ("\n[cut at 64 KiB]\n" if len(raw) > MAX_OUTPUT else "")


def compile_program(name: str, defines: Mapping[str, Union[int, bool]]) -> Any:
    """Compile ``bpftop/bpf/<name>.c``; returns the BCC ``BPF`` object.

    BCC attaches TRACEPOINT_PROBE and RAW_TRACEPOINT_PROBE functions while
    loading; other functions are attached by the caller.
    """
    system.check_privileges()
    system.ensure_tracefs()
    bcc = import_bcc()
    flags = define_flags(defines) + include_flags()
    with BCC_LOCK:
        place, entry_key = _cache_place(name, flags)
        if place is not None and not objcache.status.compile_always:
            bpf = _from_cache(bcc, name, place, entry_key)
            if bpf is not None:
                return bpf
        btf_before = cached_module.btf_fds() if place is not None else set()
        bpf = bcc.BPF(text=source(name).encode(), cflags=flags)
        if place is not None:
            # The one BTF object the compile loaded (none where BCC or the
            # kernel has no BTF): its programs' BTF, stored with them.
            new_btf = cached_module.btf_fds() - btf_before
            _store(bcc, bpf, name, place, entry_key, min(new_btf) if len(new_btf) == 1 else None)
        return bpf


def _cache_place(name: str, flags: List[str]) -> Tuple[Optional[str], str]:
    """The cache directory and this compile's key in it; (None, "") when
    the cache is off or its directory is not safe to use (said once, in
    ``bpftop doctor``)."""
    status = objcache.status
    wanted = objcache.directory()
    if wanted is None or status.disabled:
        return None, ""
    try:
        place = objcache.open_directory(wanted)
    except (OSError, objcache.UnsafeCache) as e:
        status.disabled = f"{wanted} not used: {e}"
        return None, ""
    status.directory = place
    return place, objcache.key(name, flags)


def _from_cache(bcc: Any, name: str, place: str, entry_key: str) -> Any:
    status = objcache.status
    try:
        entry = objcache.read(place, entry_key)
    except (OSError, objcache.UnsafeCache) as e:
        status.skipped[name] = f"entry not read: {e}"
        return None
    if entry is None:
        return None
    try:
        with native_output_kept():
            bpf = cached_module.restore(bcc, entry)
    except Exception as e:  # whatever failed, a compile says it properly
        status.skipped[name] = f"entry not used ({e}); compiled instead"
        return None
    status.hits.append(name)
    return bpf


def _store(bcc: Any, bpf: Any, name: str, place: str, entry_key: str, btf_fd: Optional[int]) -> None:
    status = objcache.status
    try:
        objcache.write(place, entry_key, cached_module.capture(bcc, bpf, btf_fd))
    except cached_module.NotCacheable as e:
        status.skipped[name] = f"not cached: {e}"
        return
    except (OSError, ValueError) as e:
        status.skipped[name] = f"not stored: {e}"
        return
    status.stored.append(name)


def load(name: str, defines: Mapping[str, Union[int, bool]], attach: Optional[Callable[[Any], None]] = None) -> Any:
    """Compile ``name`` and run ``attach`` on it (the probes BCC does not
    attach itself, buffers to open); when attaching fails the program is
    closed again and the error raised. Compile and attach hold BCC_LOCK
    together: attaching uses BCC's symbol caches."""
    with BCC_LOCK:
        bpf = compile_program(name, defines)
        if attach is not None:
            try:
                attach(bpf)
            except Exception:
                close_program(bpf)
                raise
        return bpf


def close_program(bpf: Any) -> None:
    """Detach every probe and free the programs and maps of a BPF object now,
    rather than whenever it is garbage-collected."""
    if bpf is not None:
        # What BCC says while detaching (a probe already gone) is not the
        # user's business at exit; nothing keeps it.
        with native_output_kept():
            bpf.cleanup()
