"""A child process that makes TCP connects on cue, for the tests that check
bpftop's TCP counts against the connects a process made."""

from workload import Child

# Listens on 127.0.0.1 and ::1, finds a closed port and prints the three
# ports; then, a command a line on stdin:
#   "go A B C"  A IPv4 and B IPv6 connects, each accepted, and C to the
#               closed port (refused); one after the other, each closed
#               before the next; answers "done <refused>";
#   "each-cpu"  one connect from every CPU in turn (per-CPU buffers see one
#               each); answers "done 0";
#   "sys N"     N getppid calls; answers "done".
SOURCE = r"""
import os, socket, sys
l4 = socket.socket(); l4.bind(("127.0.0.1", 0)); l4.listen(4096)
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", 0)); l6.listen(4096)
c = socket.socket(); c.bind(("127.0.0.1", 0)); closed = c.getsockname()[1]; c.close()
print(l4.getsockname()[1], l6.getsockname()[1], closed, flush=True)
cpus = sorted(os.sched_getaffinity(0))
for line in sys.stdin:
    words = line.split()
    if words[0] == "sys":
        for _ in range(int(words[1])):
            os.getppid()
        print("done", flush=True)
        continue
    if words[0] == "each-cpu":
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            s = socket.socket(); s.connect(("127.0.0.1", l4.getsockname()[1]))
            l4.accept()[0].close(); s.close()
        os.sched_setaffinity(0, cpus)
        print("done 0", flush=True)
        continue
    a, b, k = map(int, words[1:])
    for fam, addr, lst, n in ((socket.AF_INET, "127.0.0.1", l4, a), (socket.AF_INET6, "::1", l6, b)):
        for _ in range(n):
            s = socket.socket(fam); s.connect((addr, lst.getsockname()[1]))
            lst.accept()[0].close(); s.close()
    refused = 0
    for _ in range(k):
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", closed))
        except ConnectionRefusedError:
            refused += 1
        s.close()
    print("done", refused, flush=True)
"""


class Connector(Child):
    """The child above; ``p4``, ``p6`` and ``closed`` are its ports."""

    def __init__(self) -> None:
        super().__init__(SOURCE)
        self.p4, self.p6, self.closed = map(int, self.proc.stdout.readline().split())

    def run(self, n4: int, n6: int, nk: int) -> None:
        done, refused = self.ask(f"go {n4} {n6} {nk}").split()
        assert done == "done" and int(refused) == nk  # the closed port stayed closed

    def syscalls(self, n: int) -> None:
        assert self.ask(f"sys {n}") == "done\n"
