"""What this kernel and this process allow: privileges, tracefs, headers,
lockdown, kprobes. Plain file reads; BCC is not imported here."""

from __future__ import annotations

import glob
import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from ..errors import FeatureError, PrivilegeError

TRACEFS = "/sys/kernel/tracing"
DEBUGFS_TRACING = "/sys/kernel/debug/tracing"
SECURITYFS = "/sys/kernel/security"

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_privileges() -> None:
    """Raise PrivilegeError with one clear line when BPF cannot be loaded.

    BCC reads tracefs and kallsyms and creates perf events, which needs
    CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON on kernels that split them.
    """
    caps = effective_caps()
    has = lambda bit: bool(caps >> bit & 1)  # noqa: E731
    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    raise PrivilegeError(
        f"bpftop needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON) to load eBPF "
        f"programs; running as {who} without them. Try: sudo bpftop"
    )


def _is_tracefs(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "events"))


def _mounted_tracefs(path: str) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            return any(
                fields[1] == path and fields[2] == "tracefs"
                for fields in (line.split() for line in f) if len(fields) > 2
            )
    except OSError:
        return False


def _access_error(path: str) -> str:
    try:
        os.listdir(path)
    except OSError as e:
        return e.strerror or str(e)
    return "events/ is not a directory"


KALLSYMS = "/proc/kallsyms"


class _Kallsyms:
    """What has been looked up in one kallsyms file so far. The file has
    a couple of hundred thousand lines: it is read once for each batch of
    names not asked about before, and only the answers are kept."""

    def __init__(self) -> None:
        self.types: Dict[str, Set[str]] = {}  # name asked -> its symbol types there
        self.readable: Optional[bool] = None


_kallsyms: Dict[str, _Kallsyms] = {}
_kallsyms_lock = threading.Lock()
# Names the collectors will ask about, declared when their modules load:
# the first scan looks for all of them, so /proc/kallsyms (about 0.1 s to
# read here) is read once per process, not once per collector.
_wanted: Set[str] = set()

# bcc's own test for raw tracepoints (BPF.support_raw_tracepoint) asks for
# one of these by address: it loads every kernel symbol into bcc's cache
# (0.14 s, and memory kept for good) and says no when kallsyms hides
# addresses. Their names are enough.
RAW_TP_SYMBOLS = ("bpf_find_raw_tracepoint", "bpf_get_raw_tracepoint")


def want_symbols(names: Iterable[str]) -> None:
    """Declare kernel symbol names a later kernel_symbols() call will ask
    about, so that one read of kallsyms answers them all."""
    with _kallsyms_lock:
        _wanted.update(names)


def _scan_kallsyms(path: str, names: Iterable[str]) -> _Kallsyms:
    with _kallsyms_lock:
        known = _kallsyms.setdefault(path, _Kallsyms())
        if not set(names) - set(known.types) and known.readable is not None:
            return known
        new = (set(names) | _wanted) - set(known.types)
        if not new and known.readable is not None:
            return known
        found: Dict[str, Set[str]] = {name: set() for name in new}
        readable: Optional[bool] = None
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if readable is None:
                        try:
                            readable = int(parts[0], 16) != 0
                        except (ValueError, IndexError):
                            readable = False
                    if len(parts) >= 3 and parts[2] in found:
                        found[parts[2]].add(parts[1])
        except OSError:
            pass
        known.types.update(found)
        if known.readable is None:
            known.readable = bool(readable)
        return known


def kernel_symbols(names: Iterable[str], path: str = KALLSYMS, text_only: bool = True) -> Set[str]:
    """The subset of ``names`` that are symbols of the running kernel (text
    symbols only, unless ``text_only`` is false). Read once per name and
    process.

    A symbol in kallsyms may still be unprobeable (notrace, or inlined at
    some call sites), which only attaching tells; a name missing here was
    inlined everywhere or renamed.
    """
    wanted = set(names)
    known = _scan_kallsyms(path, wanted)
    return {
        name for name in wanted
        if known.types.get(name) and (not text_only or known.types[name] & {"T", "t"})
    }


def raw_tracepoints_supported(path: str = KALLSYMS) -> bool:
    """Whether the kernel has raw tracepoints (4.17 and later)."""
    return bool(kernel_symbols(RAW_TP_SYMBOLS, path, text_only=False))


want_symbols(RAW_TP_SYMBOLS)


@dataclass(frozen=True)
class TracefsInfo:
    path: str
    mounted_by_us: bool


_tracefs: Optional[TracefsInfo] = None


def ensure_tracefs() -> TracefsInfo:
    """Find tracefs, mounting it at /sys/kernel/tracing when it is absent.

    BCC reads tracepoint formats from /sys/kernel/debug/tracing when that
    exists, else from /sys/kernel/tracing, so the mount goes to the latter.
    """
    global _tracefs
    if _tracefs is not None and _is_tracefs(_tracefs.path):
        return _tracefs
    for path in (DEBUGFS_TRACING, TRACEFS):
        if _is_tracefs(path):
            _tracefs = TracefsInfo(path, mounted_by_us=False)
            return _tracefs
    for path in (DEBUGFS_TRACING, TRACEFS):
        if _mounted_tracefs(path):
            # Mounted, yet events/ is not there to us: saying "not mounted"
            # would send the operator the wrong way.
            why = _access_error(os.path.join(path, "events"))
            raise FeatureError(f"tracefs is mounted at {path} but cannot be read ({why})")
    if not os.path.isdir(TRACEFS):
        raise FeatureError(f"tracefs is not available: {TRACEFS} does not exist (kernel without CONFIG_TRACING?)")
    res = subprocess.run(
        ["mount", "-t", "tracefs", "tracefs", TRACEFS], capture_output=True, text=True
    )
    if res.returncode != 0 or not _is_tracefs(TRACEFS):
        detail = (res.stderr or res.stdout).strip() or f"exit {res.returncode}"
        raise FeatureError(f"tracefs is not mounted and mounting it at {TRACEFS} failed: {detail}")
    _tracefs = TracefsInfo(TRACEFS, mounted_by_us=True)
    return _tracefs


def kernel_version(release: str = "") -> Tuple[int, int]:
    """(major, minor) of the running kernel, or of ``release``; (0, 0) when
    the release does not start with them."""
    m = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def tracepoint_exists(category: str, event: str) -> bool:
    info = ensure_tracefs()
    return os.path.isfile(os.path.join(info.path, "events", category, event, "format"))


def kprobes_available() -> Tuple[bool, str]:
    info = ensure_tracefs()
    if os.path.exists(os.path.join(info.path, "kprobe_events")):
        return True, ""
    return False, f"kernel has no kprobes ({info.path}/kprobe_events absent: CONFIG_KPROBES off)"


_traceable: Optional[FrozenSet[str]] = None


def traceable_functions() -> FrozenSet[str]:
    """Kernel functions a kprobe can attach to: tracefs's
    available_filter_functions less the kprobes blacklist. A name in
    kallsyms may still be notrace or an inlined copy ("not traceable" at
    attach, after a compile). Read once per process: the list has tens of
    thousands of lines, and BCC's own lookup (a regex over every line per
    call) costs minutes in an emulated guest."""
    global _traceable
    if _traceable is None:
        info = ensure_tracefs()
        names = set()
        try:
            with open(os.path.join(info.path, "available_filter_functions")) as f:
                for line in f:
                    name = line.split(" ", 1)[0].strip()
                    if name:
                        names.add(name)
        except OSError:
            pass
        try:
            with open("/sys/kernel/debug/kprobes/blacklist") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        names.discard(parts[2])
        except OSError:
            pass  # debugfs not mounted: the attach itself will say
        _traceable = frozenset(names)
    return _traceable


def not_traceable(functions: Iterable[str]) -> List[str]:
    """The ones among ``functions`` a kprobe cannot attach to."""
    ok = traceable_functions()
    if not ok:
        return []  # the list is unreadable here: let the attach decide
    return [f for f in functions if f not in ok]


@dataclass(frozen=True)
class HeadersInfo:
    path: Optional[str]  # what BCC will use, resolved
    version: Optional[str]  # kernel version the headers are for
    matches_running: bool
    note: str


def _headers_version(build: str) -> Optional[str]:
    for rel in ("include/generated/utsrelease.h", "include/config/kernel.release"):
        try:
            with open(os.path.join(build, rel)) as f:
                text = f.read()
        except OSError:
            continue
        if '"' in text:
            return text.split('"')[1]
        return text.strip() or None
    return None


def kernel_headers() -> HeadersInfo:
    release = platform.release()
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(os.path.join(build, "include")):
        real = os.path.realpath(build)
        version = _headers_version(real)
        matches = version == release
        note = "" if matches else (
            f"headers are for {version or 'another kernel'}, not {release}: safe for bpftop's "
            "programs, which read tracepoint arguments and pt_regs only"
        )
        return HeadersInfo(real, version, matches, note)
    if os.path.exists("/sys/kernel/kheaders.tar.xz"):
        return HeadersInfo("/sys/kernel/kheaders.tar.xz", release, True, "built into the kernel (CONFIG_IKHEADERS)")
    candidates = sorted(glob.glob("/usr/src/linux-headers-*"))
    hint = f" ({', '.join(candidates)} installed but not linked)" if candidates else ""
    return HeadersInfo(None, None, False, f"no kernel headers at {build}{hint}; run: sudo make setup")


def lockdown_mode() -> str:
    path = os.path.join(SECURITYFS, "lockdown")
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        if not os.path.ismount(SECURITYFS):
            return "unknown (securityfs not mounted)"
        return "none (no lockdown LSM)"
    except OSError as e:
        return f"unknown ({e.strerror})"
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return text


def read_sysctl(name: str) -> Optional[str]:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def btf_available() -> bool:
    return os.path.exists("/sys/kernel/btf/vmlinux")


def ensure_securityfs() -> bool:
    """Mount securityfs (to read the lockdown mode) when it is absent and we
    may; True when this call mounted it."""
    if os.path.ismount(SECURITYFS) or not os.path.isdir(SECURITYFS) or os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "securityfs", "securityfs", SECURITYFS], capture_output=True)
    return res.returncode == 0


def bcc_version() -> str:
    try:
        import bcc
    except ImportError:
        return "not importable (install python3-bpfcc)"
    return getattr(bcc, "__version__", "unknown version")


# membarrier(2): MEMBARRIER_CMD_GLOBAL returns after synchronize_rcu(), that
# is, once every BPF program run that began before the call has ended (they
# run under RCU, with preemption off).
_MEMBARRIER_NR = {"x86_64": 324, "aarch64": 283, "riscv64": 283, "ppc64le": 365, "s390x": 356}
_MEMBARRIER_CMD_GLOBAL = 1
_RCU_FALLBACK_S = 0.05


def wait_for_running_programs() -> bool:
    """Return once the BPF programs that were running on any CPU when this
    was called have finished: a program that read the old filter a moment
    ago has then made its count, and the next read sees it. False where the
    kernel cannot say (no membarrier, or nohz_full, which refuses it): then
    a short sleep stands in for it."""
    nr = _MEMBARRIER_NR.get(platform.machine())
    if nr is not None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(nr, _MEMBARRIER_CMD_GLOBAL, 0, 0) == 0:
            return True
    time.sleep(_RCU_FALLBACK_S)
    return False
