"""What every collector shares: hook kinds, event buffers, count units,
collector states, hook attempts."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, TypeVar


class HookKind(str, enum.Enum):
    RAW_TRACEPOINT = "raw_tracepoint"
    # A raw tracepoint whose program is typed by the kernel's BTF (bpftool's "tp_btf").
    BTF_RAW_TRACEPOINT = "tp_btf"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"
    FENTRY = "fentry"
    # No hook: the BPF tab reads the kernel's object lists through bpf(2).
    SYSCALL = "syscall"


class EventBuffer(str, enum.Enum):
    """How a rung's events reach user space; the value is what the TCP
    snapshot and its JSON say."""

    NONE = "none"  # maps only, read once per interval
    RING = "ring buffer"
    PERF = "perf buffer"


class CountUnit(str, enum.Enum):
    """What one count stands for where rungs differ (the page cache: one
    per page, or one per call, that is per folio); the value is the
    snapshot's and the JSON's ``unit``."""

    PAGES = "pages"
    CALLS = "calls"


class CollectorState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # no rung of the ladder worked; see attempts
    ERROR = "error"  # was running, a read failed; the collection loop retries
    STOPPED = "stopped"
    DISABLED = "disabled"  # switched off by the operator: detached, not failed
    REPLAY = "replay"  # shown from a recording: no BPF at all


# Status messages that more than one place sets: the collection loop as it
# switches a collector, the console at once when the operator asks.
STARTING_MESSAGE = "compiling and attaching"
SWITCHED_OFF_MESSAGE = "switched off by the operator"


@dataclass(frozen=True)
class HookAttempt:
    """One rung of a collector's hook ladder and how it went."""

    strategy: str
    kind: HookKind
    hooks: Tuple[str, ...]
    ok: Optional[bool]  # None: not tried, a higher rung was chosen
    reason: str = ""
    seconds: float = 0.0
    # What the compiler, BCC and libbpf printed while this rung loaded
    # (warnings, a verifier log): kept for ``bpftop doctor -v``, never shown
    # on the user's stderr.
    output: str = ""
    # The rung's short name (the strategy text may carry a note for doctor),
    # and what its counts are in, as the rung declared them.
    label: str = ""
    unit: Optional[CountUnit] = None
    buffer: EventBuffer = EventBuffer.NONE


@dataclass(frozen=True)
class CollectorStatus:
    tab: str
    state: CollectorState
    attempts: Tuple[HookAttempt, ...] = ()
    message: str = ""

    @property
    def chosen(self) -> Optional[HookAttempt]:
        for attempt in self.attempts:
            if attempt.ok:
                return attempt
        return None


CountersT = TypeVar("CountersT", bound="Counters")


class Counters:
    """Cumulative counters read from kernel maps, as a frozen dataclass of
    integers and tuples of them (histogram slots): an interval's counts are
    the difference of two readings, field by field."""

    def minus(self: CountersT, other: CountersT) -> CountersT:
        cls = type(self)
        values: List[Any] = []
        for name in _field_names(cls):
            a, b = getattr(self, name), getattr(other, name)
            values.append(tuple(x - y for x, y in zip(a, b)) if isinstance(a, tuple) else a - b)
        return cls(*values)


# dataclasses.fields() builds its answer anew on every call, and minus()
# runs for every key of every counting map, every interval.
_FIELD_NAMES: Dict[type, Tuple[str, ...]] = {}


def _field_names(cls: type) -> Tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names
