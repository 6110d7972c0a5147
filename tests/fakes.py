"""A collector without BPF for UI tests: scripted snapshots, same interface."""

import itertools
import time

from bpftop.collectors.base import Collector
from bpftop.collectors.capabilities import Capabilities
from bpftop.model import (
    CollectorState,
    HookAttempt,
    HookKind,
    ProcessRow,
    SyscallRow,
    SyscallsSnapshot,
)


def snapshot(seq=0, rows=None, processes=None):
    rows = rows if rows is not None else [
        SyscallRow("read", 0, 300 + seq, 2, 3_000_000, 300 + seq),
        SyscallRow("write", 1, 100, 0, 9_000_000, 100),
        SyscallRow("openat", 257, 50, 50, 500_000, 50),
    ]
    processes = processes if processes is not None else [
        ProcessRow(42, "nginx", 400),
        ProcessRow(7, "sshd", 50),
    ]
    return SyscallsSnapshot(
        interval_s=1.0, taken_at=time.time(), rows=tuple(rows), processes=tuple(processes),
        latency=True, hook="fake",
    )


class FakeCollector(Collector):
    """Scripted snapshots; subclasses set the tab and the hook it claims."""

    tab = "syscalls"
    title = "Syscalls"
    hook_name = "fake"
    hook_points = ("fake:hook",)
    # As a real rung declares them (ladder.Strategy label and unit).
    hook_label = ""
    hook_unit = None
    CAPABILITIES = Capabilities(kernel_filters=("pid",))

    def __init__(self, snapshots=None, fail=None):
        super().__init__()
        self._snapshots = iter(snapshots) if snapshots is not None else (snapshot(i) for i in itertools.count())
        self._fail = fail
        self.stopped = False
        self.collects = 0
        self.starts = 0
        self.pid_filters = []  # every pid filter set, as the kernel would get it

    def strategies(self):
        return []

    def start(self):
        attempt = HookAttempt(self.hook_name, HookKind.TRACEPOINT, self.hook_points, True, "chosen",
                              label=self.hook_label, unit=self.hook_unit)
        if self._fail:
            from bpftop.errors import NoStrategyError
            self.set_status(CollectorState.FAILED, self._fail, (HookAttempt("fake", HookKind.TRACEPOINT, ("fake:hook",), False, self._fail),))
            raise NoStrategyError(self._fail)
        self.starts += 1
        self.stopped = False
        self._bpf = object()
        self.set_status(CollectorState.RUNNING, "", (attempt,))
        return self.status

    def _read(self):
        self.collects += 1
        return next(self._snapshots)

    def _set_kernel_filter(self, field, values, exclude):
        if any(p > 4_000_000 for p in values):
            raise ValueError("pid out of range")
        self.pid_filters.append((tuple(values), exclude))

    def stop(self):
        self.stopped = True
        self._bpf = None
        self.set_status(CollectorState.STOPPED)
