"""Hook ladders: ordered strategies, the first that loads wins.

Each strategy has a cheap feature check (does the tracepoint exist, does the
kernel have kprobes) and a loader that compiles and attaches. Every rung that
fails keeps its reason, for the probes screen and ``bpftop doctor``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

from ..errors import NoStrategyError, PrivilegeError
from ..model import CountUnit, EventBuffer, HookAttempt, HookKind
from . import loader

T = TypeVar("T")


@dataclass(frozen=True)
class Strategy(Generic[T]):
    name: str
    kind: HookKind
    hooks: Tuple[str, ...]
    # Returns why this rung cannot work here, or "" when it may.
    check: Callable[[], str]
    # Compiles and attaches; raises on failure. Returns what the collector keeps.
    load: Callable[[], T]
    # What the rung decides that the collector and its views act on: how
    # events come up, and what a count stands for. Typed here so nobody
    # reads them back out of the name.
    buffer: EventBuffer = EventBuffer.NONE
    unit: Optional[CountUnit] = None
    # A longer remark for doctor and the probes screen ("counts pages: ...").
    note: str = ""

    @property
    def described(self) -> str:
        """The name with its note, as doctor lists the rung."""
        return f"{self.name} ({self.note})" if self.note else self.name

    def attempt(self, ok: Optional[bool], reason: str, seconds: float = 0.0, output: str = "") -> HookAttempt:
        return HookAttempt(self.described, self.kind, self.hooks, ok, reason, seconds, output,
                           self.name, self.unit, self.buffer)


@dataclass
class Climb(Generic[T]):
    attempts: List[HookAttempt] = field(default_factory=list)
    loaded: Optional[T] = None
    strategy: Optional[Strategy] = None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # BCC raises a bare message (its diagnostics are in the attempt's
    # output); keep the line short enough for a table cell.
    return (text[:300] + "...") if len(text) > 300 else (text or type(exc).__name__)


def climb(
    strategies: Sequence[Strategy[T]],
    try_all: bool = False,
    release: Callable[[Any], None] = lambda _: None,
) -> Climb[T]:
    """Try the rungs in order and keep the first that loads.

    With ``try_all`` every rung is tried (``bpftop doctor``): the ones after
    the winner are loaded, recorded and released again with ``release``.
    A missing privilege is not a property of a rung: it stops the climb.
    """
    result: Climb[T] = Climb()
    for strategy in strategies:
        if result.loaded is not None and not try_all:
            result.attempts.append(strategy.attempt(None, "not tried: a higher rung loaded"))
            continue
        t0 = time.monotonic()
        output = loader.NativeOutput()
        try:
            why_not = strategy.check()
            if why_not:
                result.attempts.append(strategy.attempt(False, why_not, time.monotonic() - t0))
                continue
            # The compiler's and libbpf's messages stay with the rung
            # (doctor -v), off the user's terminal.
            with loader.native_output_kept(output):
                loaded = strategy.load()
        except PrivilegeError:
            raise
        except Exception as exc:  # a rung failing is expected: keep why
            result.attempts.append(strategy.attempt(False, _reason(exc), time.monotonic() - t0, output.text))
            continue
        elapsed = time.monotonic() - t0
        if result.loaded is None:
            result.loaded, result.strategy = loaded, strategy
            result.attempts.append(strategy.attempt(True, "chosen", elapsed, output.text))
        else:
            release(loaded)
            result.attempts.append(strategy.attempt(True, "works; a higher rung was chosen", elapsed, output.text))
    return result


def require(result: Climb[T], what: str) -> Climb[T]:
    if result.loaded is None:
        reasons = "; ".join(f"{a.strategy}: {a.reason}" for a in result.attempts)
        raise NoStrategyError(f"{what}: no hook could be loaded ({reasons})")
    return result
