"""What every tab's JSON object shares (DESIGN.md's contract)."""

from __future__ import annotations

import datetime
import math
import threading

_UTC = datetime.timezone.utc
# The formatted second of the last call: an interval's events mostly share
# a few seconds, and building a datetime for each of them was most of the
# time headless JSON spent on the Processes tab's event lists under churn.
_last = threading.local()


def iso_time(epoch: float) -> str:
    """``datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")``,
    to the digit: the microseconds rounded half to even as ``fromtimestamp``
    rounds them, then cut to milliseconds as ``isoformat`` cuts them."""
    if not math.isfinite(epoch):
        return datetime.datetime.fromtimestamp(epoch, _UTC).isoformat(timespec="milliseconds")  # raises as before
    frac, whole = math.modf(epoch)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    second = int(whole)
    if getattr(_last, "second", None) != second:
        _last.prefix = datetime.datetime.fromtimestamp(second, _UTC).isoformat()[:-6]  # cut "+00:00"
        _last.second = second
    return f"{_last.prefix}.{us // 1000:03d}+00:00"
