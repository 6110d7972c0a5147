"""The stock-kernel matrix: the tests marked `matrix` inside guests of
Debian's stock kernels, booted with virtme-ng on this machine's userspace.

    .venv/bin/python scripts/kernel_matrix.py [--kernels 6.1,6.12]
        [--out build/kernel-matrix] [--host-junit FILE] [--timeout MIN]
        [--pytest-args "-k clone tests/test_syscalls_bpf.py"]

`make test` runs it after the host's tests (scripts/setup.sh --test
installs QEMU, the kernels and their headers from Debian's packages, and
virtme-ng). Guests run side by side, each with its own ext4 image as a
virtio disk. KVM is used where a guest boots under it; on these machines it
hangs early in boot, so guests run under QEMU's software emulation (TCG).

It prints each guest's result and a "Tested kernels" table (also written
to OUT/tested-kernels.md, which the README's table is made from), and exits
non-zero when any guest failed, timed out or ran no test.

--pytest-args runs a subset while developing: the words go to the guests'
pytest after `-m matrix`; test files or node ids among them replace the
default list of files.

A guest's chosen hooks come from its tests (hooks.txt, tests/shared.py), the
host's from `bpftop doctor`.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
GUEST_SCRIPT = REPO / "scripts" / "kernel_matrix_guest.sh"
KVM_PROBE_CACHE = Path("/var/cache/bpftop/kvm-probe")

# name -> (what it is, image glob). Headers come with the image from
# Debian's packages (linux-headers-amd64, linux-headers-6.12-amd64).
KERNELS: Dict[str, Tuple[str, str]] = {
    "6.1": ("Debian 12 stock", "/boot/vmlinuz-6.1.0-*-amd64"),
    "6.12": ("Debian 12 (6.12 from bookworm)", "/boot/vmlinuz-6.12.*-amd64"),
}

# Tests in these files report under these tabs in the table.
TAB_OF_FILE = {
    "test_syscalls_bpf": "syscalls",
    "test_disk_bpf": "disk",
    "test_tcp_bpf": "tcp",
    "test_cache_bpf": "cache",
    "test_procs_bpf": "procs",
}
COLLECTOR_OF_TAB = {"syscalls": "syscalls", "disk": "disk", "tcp": "tcp", "cache": "cache", "procs": "procs"}

README_START, README_END = "<!-- tested-kernels -->", "<!-- /tested-kernels -->"

# Under TCG a guest is tens of times slower than the host.
TCG_TIME_SCALE = 12
KVM_TIME_SCALE = 2


def say(msg: str) -> None:
    print(f"matrix: {msg}", flush=True)


def version_key(v: str) -> List[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.\-+~]", v)]


def find_kernel(pattern: str) -> Optional[str]:
    """The newest installed image matching ``pattern`` whose headers are
    installed too (BCC needs /lib/modules/RELEASE/build)."""
    found = []
    for image in glob.glob(pattern):
        release = os.path.basename(image)[len("vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{release}/build/include"):
            found.append(release)
    return max(found, key=version_key) if found else None


# vng runs virtme-run, installed beside it in the venv.
VENV_BIN = str(Path(sys.executable).parent)
os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")


def vng_command(release: str, kvm: bool, extra: List[str]) -> List[str]:
    cmd = [shutil.which("vng") or os.path.join(VENV_BIN, "vng"), "-r", f"/boot/vmlinuz-{release}"]
    if kvm:
        # -cpu host makes QEMU abort here on IA32_ARCH_CAPABILITIES.
        cmd += ["--qemu-opts=-cpu host,-arch-capabilities"]
    else:
        # One host thread for all of a guest's vCPUs. With a thread each
        # (QEMU's default) Debian's 6.12 died in two of three runs; the one
        # with the kernel's console showed "Oops: int3" in
        # syscall_trace_enter, mid-patch of a call site (text_poke's int3,
        # seen by another vCPU after the patch was done).
        cmd += ["--disable-kvm", "--qemu-opts=-accel tcg,thread=single"]
    return cmd + extra


def kvm_works(release: str) -> Tuple[bool, str]:
    """Does a guest boot under KVM here? Asked once per machine, QEMU and
    kernel (a failed probe costs its timeout), then remembered."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    key = f"{os.uname().release} {qemu} {release}"
    try:
        cached = KVM_PROBE_CACHE.read_text().splitlines()
        if cached and cached[0] == key:
            return cached[1] == "yes", cached[2] if len(cached) > 2 else ""
    except OSError:
        pass
    cmd = vng_command(release, True, ["--memory", "512M", "--cpus", "1", "--", "true"])
    # Its own session: a timeout must end QEMU too, not only vng.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rc = proc.wait(timeout=40)
        ok, why = rc == 0, f"a KVM guest exited with status {rc}"
    except subprocess.TimeoutExpired:
        ok, why = False, "a KVM guest did not boot within 40 s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    try:
        KVM_PROBE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        KVM_PROBE_CACHE.write_text(f"{key}\n{'yes' if ok else 'no'}\n{why}\n")
    except OSError:
        pass
    return ok, why


@dataclass
class Guest:
    name: str
    release: str
    out: Path
    kvm: bool
    image: Path
    proc: Optional[subprocess.Popen] = None
    started: float = 0.0
    elapsed: float = 0.0
    timed_out: bool = False
    log: Optional[object] = None
    results: Dict[str, Dict[str, int]] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)


def make_disk(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(512 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(path)], check=True)


def start_guest(g: Guest, pytest_args: List[str]) -> None:
    scale = KVM_TIME_SCALE if g.kvm else TCG_TIME_SCALE
    if pytest_args:
        # A file in the shared directory, one word a line: no quoting
        # through vng's command line and the guest's shell.
        (g.out / "pytest-args").write_text("".join(a + "\n" for a in pytest_args))
    inner = f"bash {GUEST_SCRIPT} {g.out} {REPO} {scale}"
    # --verbose: the kernel's own messages go to the guest's log too, so a
    # guest that dies says why (an oops, a panic, the OOM killer) in the
    # lines printed. 6 GiB was headroom against the OOM killer while a 6.12
    # death was unexplained; the same tests peak at 235 MB RSS on the host,
    # and the death was an emulator fault (below, vng_command).
    cmd = vng_command(g.release, g.kvm, [
        "--verbose", "--memory", "6G", "--cpus", "2",
        "--disk", str(g.image), f"--rwdir={g.out}", "--", inner,
    ])
    g.log = open(g.out / "guest.log", "w")
    g.started = time.monotonic()
    g.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=g.log, stderr=subprocess.STDOUT,
                              start_new_session=True)


def junit_counts(path: Path) -> Tuple[Dict[str, Dict[str, int]], List[str]]:
    """Per test file: passed/failed/skipped; and the ids of failed tests."""
    per: Dict[str, Dict[str, int]] = {}
    failed: List[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1] or "?"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        counts = per.setdefault(module, {"passed": 0, "failed": 0, "skipped": 0})
        counts[outcome] += 1
        if outcome == "failed":
            why = next((c.get("message") or (c.text or "") for c in case if c.tag in ("failure", "error")), "")
            why = " ".join(why.split())[:300]
            failed.append(f"{module}::{case.get('name')}" + (f": {why}" if why else ""))
    return per, failed


# The rung's name, then its hook kind (HookKind's value: one lower-case word).
_CHOSEN = re.compile(r"^\s+\[chosen\] (.+?) \([a-z_]+: ")
_SECTION = re.compile(r"^(\w+) collector(?: \(([^)]*)\))? \(")


def chosen_hooks(doctor_text: str) -> Dict[str, str]:
    """collector -> the rung doctor says it chose (first section per collector)."""
    chosen: Dict[str, str] = {}
    section = None
    for line in doctor_text.splitlines():
        m = _SECTION.match(line)
        if m:
            section = None if m.group(2) else m.group(1)
            continue
        m = _CHOSEN.match(line)
        if m and section and section not in chosen:
            chosen[section] = m.group(1)
    return chosen


def recorded_hooks(text: str) -> Dict[str, str]:
    """tab -> rung, from a guest's hooks.txt ("tab<TAB>rung" lines; the
    first line of a tab wins)."""
    hooks: Dict[str, str] = {}
    for line in text.splitlines():
        tab, sep, rung = line.partition("\t")
        if sep and rung and tab not in hooks:
            hooks[tab] = rung
    return hooks


def table(rows: List[Tuple[str, str, str, str]]) -> str:
    lines = ["| kernel | tab | chosen hook | tests passed |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {t} | {h} | {p} |" for k, t, h, p in rows]
    return "\n".join(lines) + "\n"


def rows_for(label: str, per: Dict[str, Dict[str, int]], hooks: Dict[str, str]) -> List[Tuple[str, str, str, str]]:
    out = []
    for module, tab in TAB_OF_FILE.items():
        c = per.get(module, {"passed": 0, "failed": 0, "skipped": 0})
        total = c["passed"] + c["failed"]
        passed = f"{c['passed']}/{total}" + (f" ({c['skipped']} skipped)" if c["skipped"] else "")
        hook = hooks.get(COLLECTOR_OF_TAB[tab], "none loaded")
        out.append((label, tab, hook.split(" (")[0], passed))
    other = {"passed": 0, "failed": 0}
    for module, c in per.items():
        if module not in TAB_OF_FILE:
            other["passed"] += c["passed"]
            other["failed"] += c["failed"]
    total = other["passed"] + other["failed"]
    out.append((label, "other tests (exit cleanup, doctor, ...)", "", f"{other['passed']}/{total}"))
    return out


def precompile() -> None:
    """Bytecode for the package and the tests, written here: the guests'
    root is this one, read-only, so a guest's Python compiles every module
    whose .pyc is missing or stale again in each process it starts (the
    CLI runs, pytest), seconds each under emulation."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "bpftop"), str(REPO / "tests")],
                   stdout=subprocess.DEVNULL, check=False)


def host_doctor() -> str:
    res = subprocess.run([sys.executable, "-m", "bpftop", "doctor"], capture_output=True, text=True, timeout=600)
    return res.stdout


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated: " + ", ".join(KERNELS))
    ap.add_argument("--out", default=str(REPO / "build" / "kernel-matrix"))
    ap.add_argument("--host-junit", help="the host run's JUnit XML, for the host's row of the table")
    ap.add_argument("--timeout", type=float, default=42.0, help="minutes per guest (default 42)")
    ap.add_argument("--readme", action="store_true", help="also put the table into README.md's Tested kernels section")
    ap.add_argument("--pytest-args", default="", metavar="ARGS",
                    help='a subset, for developing: e.g. "-k clone" or "tests/test_disk_bpf.py::test_x" '
                         "(added after -m matrix)")
    args = ap.parse_args(argv)
    pytest_args = shlex.split(args.pytest_args)
    if any("\n" in a for a in pytest_args):
        say("--pytest-args: no newlines in the words")
        return 2
    if args.readme and pytest_args:
        say("--readme needs the whole matrix, not a subset")
        return 2

    if os.geteuid() != 0:
        say("needs root (run: sudo make test)")
        return 2
    # SIGTERM (CI's time limit, a killed make) unwinds like Ctrl-C, so the
    # guests are ended too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = [k for k in args.kernels.split(",") if k]
    unknown = [k for k in names if k not in KERNELS]
    if unknown:
        say(f"unknown kernel {', '.join(unknown)}; known: {', '.join(KERNELS)}")
        return 2
    out_root = Path(args.out).resolve()
    if out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True)
    t0 = time.monotonic()

    guests: List[Guest] = []
    missing = []
    images = Path(tempfile.mkdtemp(prefix="bpftop-matrix-", dir="/var/tmp"))
    try:
        for name in names:
            what, pattern = KERNELS[name]
            release = find_kernel(pattern)
            if release is None:
                missing.append(f"{name} ({what}): no image with headers matches {pattern} (run: sudo make test)")
                continue
            out = out_root / name
            out.mkdir()
            image = images / f"{name}.img"
            make_disk(image)
            guests.append(Guest(name, release, out, False, image))
        for m in missing:
            say(m)
        if guests:
            precompile()
            kvm, why = kvm_works(guests[0].release)
            say(f"{'KVM' if kvm else 'software emulation (TCG)'}: {'guests boot under KVM' if kvm else why}")
            for g in guests:
                g.kvm = kvm
                start_guest(g, pytest_args)
                say(f"{g.name}: booting {g.release}")
        deadline = args.timeout * 60
        while any(g.proc and g.proc.poll() is None for g in guests):
            time.sleep(2)
            for g in guests:
                if g.proc and g.proc.poll() is None and time.monotonic() - g.started > deadline:
                    g.timed_out = True
                    os.killpg(g.proc.pid, 9)
        for g in guests:
            if g.proc:
                g.proc.wait()
                g.elapsed = time.monotonic() - g.started
            if g.log:
                g.log.close()
    finally:
        for g in guests:  # interrupted: no QEMU may outlive the run
            if g.proc and g.proc.poll() is None:
                os.killpg(g.proc.pid, 9)
                g.proc.wait()
        shutil.rmtree(images, ignore_errors=True)

    rows: List[Tuple[str, str, str, str]] = []
    if args.host_junit and Path(args.host_junit).exists():
        per, _ = junit_counts(Path(args.host_junit))
        rows += rows_for(f"{os.uname().release} (host)", per, chosen_hooks(host_doctor()))

    total_passed = total_failed = 0
    bad = bool(missing)
    for g in guests:
        junit = g.out / "junit.xml"
        rc = (g.out / "pytest.rc").read_text().strip() if (g.out / "pytest.rc").exists() else "none"
        hooks_file = g.out / "hooks.txt"
        hooks = recorded_hooks(hooks_file.read_text()) if hooks_file.exists() else {}
        if junit.exists():
            g.results, g.failures = junit_counts(junit)
        passed = sum(c["passed"] for c in g.results.values())
        failed = sum(c["failed"] for c in g.results.values())
        total_passed += passed
        total_failed += failed
        status = "ok"
        if g.timed_out:
            status = f"timed out after {args.timeout:.0f} min"
        elif rc != "0" or not passed:
            status = f"pytest exit {rc}" if passed else f"ran no test (pytest exit {rc})"
        if status != "ok":
            bad = True
            if not g.failures:
                total_failed += 1
        say(f"{g.name} ({g.release}): {passed} passed, {failed} failed in {g.elapsed / 60:.1f} min: {status}")
        for f in g.failures:
            say(f"  FAILED {f}")
        if status != "ok":
            tail = (g.out / "guest.log").read_text(errors="replace").splitlines()[-40:]
            print("\n".join(f"  | {line}" for line in tail), flush=True)
        rows += rows_for(f"{g.release} ({KERNELS[g.name][0]})", g.results, hooks)

    minutes = (time.monotonic() - t0) / 60
    md = f"Last run {time.strftime('%Y-%m-%d')}: the matrix took {minutes:.1f} min.\n\n" + table(rows)
    (out_root / "tested-kernels.md").write_text(md)
    if args.readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        start, end = text.index(README_START) + len(README_START), text.index(README_END)
        readme.write_text(text[:start] + "\n" + md + text[end:])
    print(md, flush=True)
    # Last, where a CI log's tail shows them: what failed, and why.
    for g in guests:
        for f in g.failures:
            say(f"FAILED on {g.name}: {f}")
    say(f"wall time {(time.monotonic() - t0) / 60:.1f} min")
    print(f"matrix: {total_passed} passed, {total_failed} failed", flush=True)
    return 1 if bad or total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
