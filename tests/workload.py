"""Child processes that make a known number of syscalls on cue."""

import subprocess
import sys

from testenv import scaled

# The child makes its calls only after "go" arrives on stdin, so the
# collector can be filtered to its pid first; it reports "done" and waits for
# stdin to close before exiting.
CHILD = r"""
import os, sys
n_getppid, n_getsid = int(sys.argv[1]), int(sys.argv[2])
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
for _ in range(n_getppid):
    os.getppid()
for _ in range(n_getsid):
    try:
        os.getsid(2**22 + 1)   # no such process: fails with ESRCH
    except OSError:
        pass
sys.stdout.write("done\n"); sys.stdout.flush()
sys.stdin.read()
"""


class Child:
    """A Python child process driven a line at a time over pipes: the work
    runs in a process of its own, whose pid the collectors filter on."""

    def __init__(self, source: str, *args: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", source, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, line: str) -> str:
        """Send one command line; return the child's one-line answer."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(scaled(10))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Workload(Child):
    def __init__(self, getppid: int, failing_getsid: int = 0) -> None:
        super().__init__(CHILD, getppid, failing_getsid)
        assert self.proc.stdout.readline() == "ready\n"

    def run(self) -> None:
        assert self.ask("go") == "done\n"
