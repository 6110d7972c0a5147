"""Test helpers about the kernel's BPF programs (via bpftool) and privileges."""

import json
import os
import shutil
import subprocess
import time

# Names bpftop's programs carry in the kernel (raw tracepoint rung; the
# classic tracepoints get BCC's generated name, tracepoint__<category>,
# cut to 15 characters by the kernel).
OUR_NAMES = ("bpftop_", "tracepoint__")


def bpf_skip_reason():
    if os.geteuid() != 0:
        return "needs root to load eBPF programs (run: sudo make test)"
    if not shutil.which("bpftool"):
        return "bpftool is not installed (make test installs it)"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "BCC's Python module (python3-bpfcc) is not importable"
    return None


def prog_list():
    out = subprocess.run(["bpftool", "prog", "list", "-j"], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def prog_ids():
    return {p["id"] for p in prog_list()}


def ours(progs, before=frozenset()):
    return [p for p in progs if p["id"] not in before and p.get("name", "").startswith(OUR_NAMES)]


def wait_until_gone(before, timeout=5.0):
    """Programs of ours loaded since ``before`` that are still there after
    ``timeout`` (the kernel frees them a moment after their last fd closes)."""
    deadline = time.monotonic() + timeout
    while True:
        left = ours(prog_list(), before)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def wait_until_loaded(before, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ours(prog_list(), before)
        if found:
            return found
        time.sleep(0.2)
    return []


def holds_programs(pid):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-prog":
                return True
        except OSError:
            continue
    return False


def wait_until_holding_programs(proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if holds_programs(proc.pid):
            return True
        time.sleep(0.05)
    return False


def start_once(args, timeout=30.0):
    """``bpftop --once ARGS`` started, and returned once its programs are in
    the kernel: work done after this falls inside its interval."""
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bpftop", "--once", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Its own programs, by the file descriptors it holds: other engineers'
    # bpftop programs, with the same names, come and go meanwhile.
    if not wait_until_holding_programs(proc, timeout):
        proc.kill()
        raise AssertionError(f"bpftop {' '.join(args)} never loaded its programs: {proc.communicate()[1]}")
    # Attached by now; the collector reads its baseline right after, which
    # can lag on a loaded machine.
    time.sleep(1.0)
    return proc


def assert_signal_exit(proc, sig, code, before, timeout=30):
    """Send ``sig`` to a running bpftop: it must exit with ``code``, print no
    traceback, and leave none of the programs it loaded behind."""
    try:
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    assert "Traceback" not in err
    assert wait_until_gone(before) == []


def loaded_ids(collector):
    """Kernel ids of the programs a collector of this process holds."""
    from bpftop.bpf.stats import program_stats

    ids = set()
    for _, fd in collector.programs():
        stats = program_stats(fd)
        if stats is not None:
            ids.add(stats.prog_id)
    return ids


def wait_until_ids_gone(ids, timeout=5.0):
    """Those of ``ids`` still loaded after ``timeout``: unlike matching by
    name, other engineers' programs loaded meanwhile do not count."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in prog_list() if p["id"] in ids]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
