"""``bpftop doctor``: what this kernel allows and, per collector, which hooks
load here, which one bpftop picks, and why the others fail."""

from __future__ import annotations

import platform
from typing import Any, List, TextIO

from .bpf import objcache, system
from .collectors.base import Collector
from .errors import BpftopError, PrivilegeError
from .safetext import safe_lines
from .tabs import TABS, CollectorOptions


def _facts() -> List[tuple]:
    rows = [("kernel", f"{platform.release()} {platform.machine()}")]
    headers = system.kernel_headers()
    if headers.path:
        text = f"{headers.path} ({headers.version or 'version unknown'})"
        if headers.note:
            text += f"\n{'':14}{headers.note}"
    else:
        text = headers.note
    rows.append(("headers", text))
    mounted_sec = system.ensure_securityfs()
    lockdown = system.lockdown_mode()
    rows.append(("lockdown", lockdown + ("  (securityfs mounted by bpftop to read it)" if mounted_sec else "")))
    try:
        tracefs = system.ensure_tracefs()
        mounted = "  (was not mounted: mounted by bpftop)" if tracefs.mounted_by_us else ""
        rows.append(("tracefs", tracefs.path + mounted))
        ok, why = system.kprobes_available()
        rows.append(("kprobes", "available" if ok else f"no: {why}"))
    except BpftopError as e:
        rows.append(("tracefs", f"unavailable: {e}"))
    rows.append(("BTF", "/sys/kernel/btf/vmlinux" if system.btf_available() else "absent (no fentry, no CO-RE)"))
    stats = system.read_sysctl("kernel.bpf_stats_enabled")
    rows.append(("bpf stats", f"kernel.bpf_stats_enabled = {stats}" if stats is not None else "sysctl absent"))
    rows.append(("bcc", system.bcc_version()))
    place = objcache.directory()
    rows.append(("object cache", place if place is not None else objcache.status.disabled))
    return rows


def _cache_report(out: TextIO) -> None:
    st = objcache.status
    if st.disabled:
        print(f"\ncompiled-object cache: not used: {st.disabled}", file=out)
        return
    if st.directory is None:
        print("\ncompiled-object cache: nothing was compiled", file=out)
        return
    print(f"\ncompiled-object cache ({st.directory}): every hook above was compiled, "
          f"{len(st.stored)} stored for later starts", file=out)
    for name, why in sorted(st.skipped.items()):
        print(f"  {name}: {why}", file=out)


class _SafeOut:
    """Reasons quote compiler and kernel messages, which name paths and
    functions of this machine: escaped like any traced text."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(safe_lines(text))

    def flush(self) -> None:
        self.out.flush()


def run(out: TextIO, verbose: bool = False, quick: bool = False) -> int:
    out = _SafeOut(out)  # type: ignore[assignment]
    print("bpftop doctor", file=out)
    print(file=out)
    for name, value in _facts():
        print(f"{name:<14}{value}", file=out)
    try:
        system.check_privileges()
    except PrivilegeError as e:
        print(f"\ncollectors not tried: {e}", file=out)
        return e.exit_code
    # Every hook compiles here, cached or not: a cached entry would hide a
    # compile that fails now (broken headers) and the compiler's output.
    objcache.status.compile_always = True
    status = 0
    for spec in TABS.values():
        variants = [("", CollectorOptions())] + [(label, CollectorOptions(settings=settings))
                                                 for label, settings in spec.doctor_variants]
        for label, options in variants:
            status = max(status, _ladder(out, spec.id, label, spec.make_collector(options), verbose, quick))
    _cache_report(out)
    return status


def _printable(line: str) -> str:
    # Compiler output quotes kernel headers; no byte of it may drive the terminal.
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in line)


def _ladder(out: TextIO, tab: str, label: str, collector: Collector[Any], verbose: bool = False,
            quick: bool = False) -> int:
    how = "rungs tried until one loads, then released" if quick else "every rung is tried, then released"
    print(f"\n{tab} collector{' (' + label + ')' if label else ''} ({how})", file=out)
    try:
        attempts = collector.probe_all(try_all=not quick)
    except BpftopError as e:
        print(f"  failed: {e}", file=out)
        return e.exit_code
    chosen = next((a for a in attempts if a.ok), None)
    for a in attempts:
        mark = "chosen" if a is chosen else ("works" if a.ok else ("fails" if a.ok is False else "--"))
        hooks = ", ".join(a.hooks)
        took = f" {a.seconds:.2f}s" if a.ok is not None else ""
        print(f"  [{mark:^6}] {a.strategy} ({a.kind.value}: {hooks}){took}", file=out)
        if a.ok is not True:
            print(f"           {a.reason}", file=out)
        if verbose and a.output.strip():
            print("           what the compiler, BCC and libbpf printed:", file=out)
            for line in a.output.rstrip().splitlines():
                print(f"           | {_printable(line)}", file=out)
    if chosen is None:
        print("  no hook loads here: this tab cannot run on this kernel", file=out)
        return 2
    return 0
