"""A process of its own that loads a known BPF program for the BPF tab's
tests: a raw tracepoint program on task_rename that counts every run in
an array, and a hash map with ENTRIES entries written from user space.

It names itself COMM, prints "ready PROG_ID MAP_ID", then for each line on
stdin: "rename N" renames itself N times (prctl PR_SET_NAME, each a
task_rename event) and prints "done"; "total" prints how many times the
program ran so far (every task's renames, by its own count); "quit" exits.
"""

import ctypes
import os
import sys

COMM = b"bpftabchild"
ENTRIES = 5
PR_SET_NAME = 15

SOURCE = r"""
BPF_ARRAY(total, u64, 1);
BPF_HASH(marks, u32, u64, 64);

RAW_TRACEPOINT_PROBE(task_rename) {
    u32 zero = 0;
    u64 *v = total.lookup(&zero);
    if (v)
        __sync_fetch_and_add(v, 1);
    /* Uses the map, so that the kernel lists it among the program's. */
    u64 *m = marks.lookup(&zero);
    return m ? 0 : 1;
}
"""

libc = ctypes.CDLL(None, use_errno=True)


def rename():
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(COMM), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def fd_id(fd, key):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for fd {fd}")


def main():
    rename()
    from bcc import BPF

    b = BPF(text=SOURCE)
    marks = b["marks"]
    for i in range(ENTRIES):
        marks[ctypes.c_uint(i)] = ctypes.c_ulonglong(i * 10)
    prog_fd = next(iter(b.funcs.values())).fd
    print(f"ready {fd_id(prog_fd, 'prog_id')} {fd_id(marks.map_fd, 'map_id')}", flush=True)
    total = b["total"]
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "rename":
            for _ in range(int(words[1])):
                rename()
            print("done", flush=True)
        elif words[0] == "total":
            print(total[ctypes.c_int(0)].value, flush=True)
        elif words[0] == "quit":
            break
    os._exit(0)


if __name__ == "__main__":
    main()
