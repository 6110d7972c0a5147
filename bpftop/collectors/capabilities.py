"""What a collector can do, declared on its class rather than found by
looking for method names: the filter fields it applies in the kernel, the
ones it applies itself to each event in user space, how its events come up,
and what its counts are in. The console's filters, the tab registry and
the probes screen read these; nothing here needs BCC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

from ..model.common import CountUnit, EventBuffer

# Filter fields a kernel program applies through a BPF map (no recompile).
KernelField = Literal["pid", "port", "disk", "op", "uid"]
KERNEL_FIELDS: Tuple[KernelField, ...] = ("pid", "port", "disk", "op", "uid")
# Fields a collector applies in Python to each event as it arrives.
EventField = Literal["comm", "addr"]
EVENT_FIELDS: Tuple[EventField, ...] = ("comm", "addr")


@dataclass(frozen=True)
class Capabilities:
    kernel_filters: Tuple[KernelField, ...] = ()
    event_filters: Tuple[EventField, ...] = ()
    # The buffers its rungs may send events through; (NONE,) when it only
    # reads maps. The rung in use says which one (Strategy.buffer).
    buffers: Tuple[EventBuffer, ...] = (EventBuffer.NONE,)
    # The units its counts may be in; the rung in use says which one
    # (Strategy.unit). Empty: counts are events, whatever the rung.
    units: Tuple[CountUnit, ...] = ()
    # False: once it has been read, the console reads it only while its tab
    # is on screen, and at once when the tab is shown. For a collector whose
    # read costs syscalls for each object in the kernel and whose counts the
    # kernel keeps whole, so that the reading on return covers the time away.
    read_while_hidden: bool = True


@dataclass(frozen=True)
class EventFilter:
    """The user-space part of a filter: one process-name regex (searched)
    and destination addresses or networks ("10.0.0.0/8", "::1"), each
    wanted or not wanted. Empty values mean no constraint. The collector
    checks it (ValueError on a bad regex or address)."""

    comm: Optional[str] = None
    comm_exclude: bool = False
    addrs: Tuple[str, ...] = ()
    addr_exclude: bool = False

