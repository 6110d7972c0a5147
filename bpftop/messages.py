"""Messages from collector threads to the UI, in one place.

Posting a Textual message is thread-safe. A burst of intervals (a slow
terminal, a paused UI thread) collapses to the newest.
"""

from __future__ import annotations

from typing import Any, Sequence, Tuple

from textual.message import Message

from .model import CollectorStatus


class IntervalReady(Message):
    """One interval's snapshots, every tab's in one message: one wake-up of
    the UI a beat, not one per tab."""

    def __init__(self, snapshots: Sequence[Tuple[str, Any]]) -> None:
        super().__init__()
        self.snapshots = snapshots

    def can_replace(self, message: Message) -> bool:
        # A UI that fell behind shows the newer interval, when it has every
        # tab the older one had.
        return isinstance(message, IntervalReady) and {t for t, _ in message.snapshots} <= {
            t for t, _ in self.snapshots}


class StatusChanged(Message):
    def __init__(self, status: CollectorStatus) -> None:
        super().__init__()
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusChanged) and message.status.tab == self.status.tab


class RecordingFailed(Message):
    """Writing the recording failed; it is closed, the console goes on."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why


class SwitchProbe(Message):
    """A tab's view asks for one of its collector's optional probes (the
    syscalls tab's latency) to be switched on or off."""

    def __init__(self, tab: str, part: str) -> None:
        super().__init__()
        self.tab = tab
        self.part = part
