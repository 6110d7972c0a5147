"""Where the tests run: the host, or a kernel-matrix guest.

A guest (scripts/kernel_matrix.py) runs under QEMU's software emulation,
tens of times slower than the host, and has a virtio disk of its own for
disk and page-cache work (its root is a host directory shared over 9p,
which does not go through the block layer). The guest script says so
through these variables; on the host they are unset.
"""

import os

# Multiplies every wait on bpftop (compiles, start-up, exits): a guest
# compiles one BPF program in 10 to 50 s where the host takes one.
TIME_SCALE = max(1.0, float(os.environ.get("BPFTOP_TEST_TIME_SCALE") or 1))

# A directory on a real block device with a page-cached filesystem.
WORKDIR = os.environ.get("BPFTOP_TEST_WORKDIR") or "/var/tmp"


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


# How much longer a `bpftop --once` interval is made in a guest, so that
# its start-up lag and the work it must see still fit in it (a full
# TIME_SCALE would make each such test wait minutes).
ONCE_SLOWER = min(TIME_SCALE, 3.0)
