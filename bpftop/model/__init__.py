"""Snapshot dataclasses: what collectors hand over and every view renders.

The TUI, the plain-text output (``--once``), ``--json`` and recordings all
render from these, so what is on screen and what is dumped cannot disagree.
Nothing here knows about BCC or Textual. One module per tab, plus
``common`` for what every collector shares.
"""

from .common import CollectorState, CollectorStatus, CountUnit, EventBuffer, HookAttempt, HookKind
from .syscalls import ProcessRow, SyscallRow, SyscallsSnapshot

__all__ = [
    "CollectorState",
    "CollectorStatus",
    "CountUnit",
    "EventBuffer",
    "HookAttempt",
    "HookKind",
    "ProcessRow",
    "SyscallRow",
    "SyscallsSnapshot",
]
