"""What the BPF programs a process holds have run, as the kernel counts it
(run_time_ns and run_cnt in /proc/PID/fdinfo, kept while BPF run-time
statistics are on): the benches' kernel-measured passes."""

import contextlib
import os
import sys
from typing import Iterator, Tuple, Type


def program_time(pid: int) -> Tuple[int, int]:
    """(run_time_ns, run_cnt) summed over the BPF programs ``pid`` holds."""
    ns = cnt = 0
    seen = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        prog = info.get("prog_id", "").strip()
        if prog in seen:
            continue
        seen.add(prog)
        ns += int(info.get("run_time_ns", "0").strip() or 0)
        cnt += int(info.get("run_cnt", "0").strip() or 0)
    return ns, cnt


@contextlib.contextmanager
def statistics_on(root: str, error: Type[Exception]) -> Iterator[None]:
    """BPF run-time statistics on for the block (bpftop's own switch, from
    the checkout at ``root``); raises ``error`` when they cannot be."""
    sys.path.insert(0, root)
    from bpftop.bpf.stats import StatsSwitch

    stats = StatsSwitch()
    if not stats.open():
        raise error(f"no BPF run-time statistics: {stats.error}")
    try:
        yield
    finally:
        stats.close()
