"""Child processes that make a known number of syscalls on cue."""

import subprocess
import sys

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


class Workload:
    def __init__(self, getppid: int, failing_getsid: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(getppid), str(failing_getsid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout.readline() == "ready\n"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def run(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "done\n"

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
