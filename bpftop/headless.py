"""Headless mode, like ``top -b``: collect the chosen tabs every interval
and write each interval to stdout, as JSON Lines or as the tabs' text;
optionally record them. Exits after N intervals, on SIGTERM/SIGINT, or when
stdout goes away; the caller's ``finally`` detaches everything."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .collectors.base import Collector
from .errors import BpftopError
from .jsonout import iso_time
from .recording.file import Recorder
from .tabs import TabSpec


def start_all(specs: Sequence[TabSpec], collectors: Sequence[Collector], err: TextIO) -> List[Tuple[TabSpec, Collector]]:
    """Start every collector; with several tabs, one that cannot run here is
    reported and left out, with one it is the error."""
    running = []
    for spec, collector in zip(specs, collectors):
        try:
            collector.start()
        except BpftopError as e:
            if len(specs) == 1:
                raise
            print(f"bpftop: {spec.id} left out: {e}", file=err)
            continue
        running.append((spec, collector))
    if not running:
        raise BpftopError("none of the chosen tabs can run on this kernel (bpftop doctor says why)")
    return running


def interval_object(snaps: Sequence[Tuple[TabSpec, Any]], number: int) -> Dict[str, Any]:
    if len(snaps) == 1:
        return snaps[0][0].to_dict(snaps[0][1])
    return {
        "interval": number,
        "time": iso_time(time.time()),
        "tabs": {spec.id: spec.to_dict(snap) for spec, snap in snaps},
    }


def run(
    specs: Sequence[TabSpec],
    collectors: Sequence[Collector],
    interval: float,
    count: Optional[int],
    as_json: bool,
    recorder: Optional[Recorder] = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    running = start_all(specs, collectors, err)
    number = 0
    deadline = time.monotonic() + interval
    while count is None or number < count:
        time.sleep(max(0.0, deadline - time.monotonic()))
        deadline += interval
        snaps = [(spec, collector.collect()) for spec, collector in running]
        number += 1
        if recorder is not None:
            recorder.write_many([(spec.id, snap) for spec, snap in snaps])
        if as_json:
            out.write(json.dumps(interval_object(snaps, number)) + "\n")
        else:
            if number > 1:
                out.write("\n")
            out.write("\n".join(spec.to_text(snap) for spec, snap in snaps))
        out.flush()
    return 0
