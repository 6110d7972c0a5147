"""Disk names and device numbers: /sys/block for whole disks, /proc/partitions
for partitions. Block tracepoints report the whole disk's number, in the
kernel's encoding (major << 20 | minor)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

SYS_BLOCK = "/sys/block"
PROC_PARTITIONS = "/proc/partitions"
MINORBITS = 20

_MAJMIN = re.compile(r"^(\d+):(\d+)$")


def kdev(major: int, minor: int) -> int:
    return (major << MINORBITS) | minor


def split_kdev(dev: int) -> Tuple[int, int]:
    return dev >> MINORBITS, dev & ((1 << MINORBITS) - 1)


def majmin(dev: int) -> str:
    major, minor = split_kdev(dev)
    return f"{major}:{minor}"


@dataclass(frozen=True)
class BlockDevices:
    disks: Dict[int, str]  # kernel dev -> whole-disk name
    partitions: Dict[str, str]  # partition name -> its disk's name

    def name(self, dev: int) -> str:
        return self.disks.get(dev) or majmin(dev)

    def resolve(self, names: Iterable[object]) -> Tuple[Tuple[str, int], ...]:
        """Names (``vda``, ``/dev/vda``, ``254:0``) -> (name, kernel dev),
        sorted and without duplicates. Raises ValueError with the reason."""
        by_name = {name: dev for dev, name in self.disks.items()}
        out = {}
        for raw in names:
            if not isinstance(raw, str):
                raise ValueError(f"disk must be a name like vda, not {raw!r}")
            text = raw.strip()
            name = text[5:] if text.startswith("/dev/") else text
            m = _MAJMIN.match(name)
            if m:
                dev = kdev(int(m.group(1)), int(m.group(2)))
                out[self.name(dev)] = dev
                continue
            if name in by_name:
                out[name] = by_name[name]
                continue
            if name in self.partitions:
                disk = self.partitions[name]
                raise ValueError(
                    f"{name} is a partition of {disk}: block I/O is reported per whole disk, use disk={disk}"
                )
            known = ", ".join(sorted(by_name)) or "none found"
            raise ValueError(f"no disk named {raw!r} (disks: {known})")
        return tuple(sorted(out.items()))


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def scan(sys_block: str = SYS_BLOCK, proc_partitions: str = PROC_PARTITIONS) -> BlockDevices:
    disks: Dict[int, str] = {}
    partitions: Dict[str, str] = {}
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        names = []
    for name in names:
        text = _read(os.path.join(sys_block, name, "dev"))
        m = _MAJMIN.match(text or "")
        if m:
            disks[kdev(int(m.group(1)), int(m.group(2)))] = name
        try:
            for entry in os.listdir(os.path.join(sys_block, name)):
                if entry.startswith(name) and os.path.exists(os.path.join(sys_block, name, entry, "partition")):
                    partitions[entry] = name
        except OSError:
            pass
    if not disks:
        # No sysfs (a container): /proc/partitions lists disks and partitions
        # alike; names ending in a digit after a disk's name are partitions.
        text = _read(proc_partitions) or ""
        for line in text.splitlines()[2:]:
            parts = line.split()
            if len(parts) != 4 or not parts[0].isdigit():
                continue
            major, minor, _, name = int(parts[0]), int(parts[1]), parts[2], parts[3]
            parent = next((d for d in disks.values() if name.startswith(d) and name != d), None)
            if parent:
                partitions[name] = parent
            else:
                disks[kdev(major, minor)] = name
    return BlockDevices(disks, partitions)
