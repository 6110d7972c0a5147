"""What every collector shares: hook kinds, collector states, hook attempts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Tuple


class HookKind(str, enum.Enum):
    RAW_TRACEPOINT = "raw_tracepoint"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"
    FENTRY = "fentry"


class CollectorState(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # no rung of the ladder worked; see attempts
    ERROR = "error"  # was running, a read failed; the collection loop retries
    STOPPED = "stopped"
    DISABLED = "disabled"  # switched off by the operator: detached, not failed
    REPLAY = "replay"  # shown from a recording: no BPF at all


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
