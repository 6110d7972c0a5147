"""The console's title line: host, kernel and interval live; the recording
being written (or why it stopped); or, in a replay, the recording's own
host, kernel and position."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

from rich.text import Text

from ..hostline import host_line
from ..recording.replay import Replay
from ..widgets.plain import Piece, styled


@dataclass
class RecordingMark:
    """The recording the title line shows, and why it stopped if it did."""

    path: str
    failed: str = ""  # short, for the title line
    message: str = ""  # the whole story, for stderr at exit


def title_line(interval: float, paused: bool, recording: Optional[RecordingMark], replay: Optional[Replay]) -> Text:
    if replay is not None:
        # The host and kernel come from the recording's header: any text.
        head = replay.recording.header
        return styled(
            ("bpftop", "bold"), " ", (" REPLAY ", "reverse"), f" {os.path.basename(replay.recording.path)}",
            f"  {head.get('host', '?')}  Linux {head.get('kernel', '?')}  {replay.describe()}",
        )
    state: List[Piece] = ["  ", (" PAUSED ", "reverse")] if paused else []
    return styled(
        ("bpftop", "bold"), f"  {host_line(interval)}",
        *state, *_recording_mark(recording),
    )


def _recording_mark(recording: Optional[RecordingMark]) -> List[Piece]:
    """While recording, a REC mark; once a recording stops, why, until
    bpftop exits (a toast alone is missed)."""
    if recording is None:
        return []
    if recording.failed:
        return ["  ", (f" RECORDING STOPPED: {recording.failed} ", "reverse bold red")]
    return ["  ", (" REC ", "reverse red"), f" {os.path.basename(recording.path)}"]
