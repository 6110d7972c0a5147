"""What every tab's JSON object shares (DESIGN.md's contract)."""

from __future__ import annotations

import datetime


def iso_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="milliseconds")
