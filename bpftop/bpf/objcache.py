"""A root-owned cache of compiled BPF programs, so that a start does not
wait on clang.

An entry holds what a compile produced (the programs' instructions, where
each refers to a map, and the maps' shapes) under a key made of everything
that can change that output: the C sources and headers, the ``-D`` flags,
the running kernel (release, build, BTF, headers), the CPUs a per-CPU
buffer is sized for, and the BCC that compiled it. A change to any of
them is a different key, so a stale entry is never looked up.

What is read back is loaded into the kernel, whose verifier checks it as
it checks a fresh compile; the cache must still never hand over something
another user wrote. So the directory and every entry must be owned by us
and writable by nobody else, every directory above it must be owned by
root (or us) and, when others may write to it, sticky; entries are opened
without following links. An entry that fails its checksum is removed and
compiled again.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Dict, Iterable, List, Optional

DEFAULT_DIR = "/var/cache/bpftop/objects"
ENV = "BPFTOP_OBJECT_CACHE"
FORMAT = 2
MAX_ENTRY_BYTES = 8 * 1024 * 1024
# Configurations in use are few (a rung and feature set per tab); the
# oldest go first past this.
MAX_ENTRIES = 64


class UnsafeCache(Exception):
    """The cache's place can be written by someone else: not used."""


@dataclass
class CacheStatus:
    """What the cache did in this process, for ``bpftop doctor``."""

    directory: Optional[str] = None
    disabled: str = ""  # why it is not used, when it is not
    # Compile every program even where an entry exists (and store the
    # result): ``bpftop doctor`` is there to show what compiles here.
    compile_always: bool = False
    hits: List[str] = field(default_factory=list)
    stored: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)  # program -> why it was not stored or not used


status = CacheStatus()
_lock = threading.Lock()
_environment: Optional[str] = None


def directory() -> Optional[str]:
    """The cache's directory, or None when it is switched off
    (``BPFTOP_OBJECT_CACHE=off``)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("off", "0", "no", "none"):
        status.disabled = f"switched off by {ENV}={value}"
        return None
    return value or DEFAULT_DIR


def _hash_file(h: Any, path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        h.update(f"{path}: absent\n".encode())
        return
    h.update(f"{path}: {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode())


def _environment_digest() -> str:
    """What a compile's output depends on besides our source and flags:
    computed once per process (the BTF hash is the one costly part, about
    20 ms)."""
    global _environment
    with _lock:
        if _environment is not None:
            return _environment
        h = hashlib.sha256()
        u = os.uname()
        h.update(f"format {FORMAT}\n{u.sysname} {u.release} {u.version} {u.machine}\n".encode())
        try:
            with open("/sys/kernel/btf/vmlinux", "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except OSError:
            h.update(b"no btf\n")
        # The headers BCC compiles against: the release's build and source
        # trees, or the kernel's own archive of them. A bind mount over a
        # tree changes its files' inodes if not their paths, and BCC_*
        # variables (BCC_KERNEL_SOURCE) can point BCC elsewhere.
        build, source = f"/lib/modules/{u.release}/build", f"/lib/modules/{u.release}/source"
        h.update(f"build -> {os.path.realpath(build)}, source -> {os.path.realpath(source)}\n".encode())
        for path in (f"{build}/include/generated/autoconf.h", f"{build}/Makefile", f"{build}/.config",
                     f"{source}/Makefile", "/sys/kernel/kheaders.tar.xz"):
            _hash_file(h, path)
        for name in sorted(os.environ):
            if name.startswith("BCC_"):
                h.update(f"{name}={os.environ[name]}\n".encode())
        # A perf buffer's map is sized by the CPUs that may exist.
        try:
            with open("/sys/devices/system/cpu/possible") as f:
                h.update(f"cpus {f.read().strip()}\n".encode())
        except OSError:
            h.update(b"cpus unknown\n")
        try:
            import bcc
            import bcc.libbcc

            h.update(f"bcc {getattr(bcc, '__version__', '?')}\n".encode())
            for path in (bcc.__file__, bcc.libbcc.__file__, *_mapped("libbcc")):
                _hash_file(h, os.path.realpath(path))
        except ImportError:
            h.update(b"no bcc\n")
        _environment = h.hexdigest()
        return _environment


def _mapped(name: str) -> List[str]:
    """The files of this process's mappings whose name holds ``name`` (the
    libbcc ctypes loaded, wherever the linker found it)."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip() if line.count(" ") >= 5 else ""
                if name in os.path.basename(path):
                    found.add(path)
    except OSError:
        pass
    return sorted(found)


def _sources_digest() -> str:
    h = hashlib.sha256()
    package = resources.files(__package__)
    for entry in sorted(package.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".c", ".h")):
            h.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return h.hexdigest()


def key(name: str, cflags: Iterable[str]) -> str:
    h = hashlib.sha256()
    h.update(f"{name}\0{_sources_digest()}\0{_environment_digest()}\0".encode())
    for flag in cflags:
        h.update(flag.encode() + b"\0")
    return h.hexdigest()


def _check_ancestors(path: str) -> None:
    uid = os.geteuid()
    parts = path.split(os.sep)
    for i in range(1, len(parts)):
        here = os.sep.join(parts[:i]) or os.sep
        st = os.lstat(here)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeCache(f"{here} is a symbolic link")
        if st.st_uid not in (0, uid):
            raise UnsafeCache(f"{here} is owned by uid {st.st_uid}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            raise UnsafeCache(f"{here} can be written by others")


def _check_own(st: os.stat_result, what: str) -> None:
    if st.st_uid != os.geteuid():
        raise UnsafeCache(f"{what} is owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCache(f"{what} can be written by others (mode {stat.S_IMODE(st.st_mode):o})")


def open_directory(path: str) -> str:
    """The cache directory, made (0700) when missing and checked; raises
    UnsafeCache when anyone but us could have written into it."""
    path = os.path.realpath(path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    _check_ancestors(path)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCache(f"{path} is not a directory")
    _check_own(st, path)
    return path


def _seal(body: Dict[str, Any]) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return json.dumps({"sha256": digest, "body": text}).encode()


def _unseal(raw: bytes) -> Dict[str, Any]:
    outer = json.loads(raw)
    text = outer["body"]
    if hashlib.sha256(text.encode()).hexdigest() != outer["sha256"]:
        raise ValueError("checksum does not match")
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("not an entry")
    return body


def read(path: str, entry_key: str) -> Optional[Dict[str, Any]]:
    """The entry stored under ``entry_key``, or None when there is none or
    it is damaged (then it is removed)."""
    name = os.path.join(path, entry_key + ".json")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP):
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeCache(f"{name} is not a regular file")
        _check_own(st, name)
        raw = f.read(MAX_ENTRY_BYTES + 1)
    try:
        if len(raw) > MAX_ENTRY_BYTES:
            raise ValueError("too large")
        body = _unseal(raw)
        if body.get("key") != entry_key or body.get("format") != FORMAT:
            raise ValueError("made for another key")
    except (ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            os.unlink(name)
        return None
    with contextlib.suppress(OSError):
        os.utime(name)  # pruning goes by last use
    return body


def write(path: str, entry_key: str, body: Dict[str, Any]) -> None:
    """Store an entry: written to a private temporary name and renamed, so
    a reader never sees half of one."""
    body = dict(body, key=entry_key, format=FORMAT)
    data = _seal(body)
    final = os.path.join(path, entry_key + ".json")
    tmp = os.path.join(path, f".{entry_key}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _prune(path)


def _prune(path: str) -> None:
    entries = []
    for name in os.listdir(path):
        if name.endswith(".json"):
            with contextlib.suppress(OSError):
                entries.append((os.lstat(os.path.join(path, name)).st_mtime_ns, name))
    for _, name in sorted(entries)[:-MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(path, name))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)
