"""Headless mode, like ``top -b``: collect the chosen tabs every interval
and write each interval to stdout, as JSON Lines or as the tabs' text;
optionally record them. Exits after N intervals, on SIGTERM/SIGINT, or when
stdout goes away; the caller's ``finally`` detaches everything.

The collection loop paces the reads; a read that fails is said on stderr
and retried with back-off, and the intervals go on with the tabs that have
data."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .collectors.base import Collector
from .errors import BpftopError
from .jsonout import iso_time
from .loop import CollectionLoop, Snapshots
from .model import CollectorState, CollectorStatus
from .recording.file import Recorder
from .tabs import TabSpec


def start_all(
    specs: Sequence[TabSpec], collectors: Sequence[Collector[Any]], err: TextIO
) -> List[Tuple[TabSpec, Collector[Any]]]:
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


def interval_object(snaps: Sequence[Tuple[TabSpec, Any]], number: int, single: Optional[bool] = None) -> Dict[str, Any]:
    """One tab's object as ``--once`` gives it when one tab runs (``single``),
    else every tab with data under ``tabs``: whether a line is one tab's
    object follows from what runs, not from which tabs had data."""
    if single if single is not None else len(snaps) == 1:
        return snaps[0][0].to_dict(snaps[0][1])
    return {
        "interval": number,
        "time": iso_time(time.time()),
        "tabs": {spec.id: spec.to_dict(snap) for spec, snap in snaps},
    }


class _Output:
    """The loop's sink in headless mode: record, then print the interval."""

    def __init__(self, specs: Dict[str, TabSpec], as_json: bool, recorder: Optional[Recorder], out: TextIO,
                 err: TextIO) -> None:
        self.specs, self.as_json, self.recorder, self.out, self.err = specs, as_json, recorder, out, err
        self.number = 0
        self.failing: Dict[str, bool] = {}

    def interval(self, snapshots: Snapshots) -> None:
        self.number += 1
        if self.recorder is not None:
            self.recorder.write_many(snapshots)
        snaps = [(self.specs[tab], snap) for tab, snap in snapshots]
        if self.as_json:
            self.out.write(json.dumps(interval_object(snaps, self.number, len(self.specs) == 1)) + "\n")
        else:
            if self.number > 1:
                self.out.write("\n")
            self.out.write("\n".join(spec.to_text(snap) for spec, snap in snaps))
        self.out.flush()

    def status(self, status: CollectorStatus) -> None:
        if status.state is CollectorState.ERROR:
            self.failing[status.tab] = True
            print(f"bpftop: {status.tab}: {status.message}", file=self.err, flush=True)
        elif status.state is CollectorState.RUNNING and self.failing.pop(status.tab, False):
            print(f"bpftop: {status.tab}: reading again", file=self.err, flush=True)


def run(
    specs: Sequence[TabSpec],
    collectors: Sequence[Collector],
    interval: float,
    count: Optional[int],
    as_json: bool,
    recorder: Optional[Recorder] = None,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    running = start_all(specs, collectors, err)
    output = _Output({spec.id: spec for spec, _ in running}, as_json, recorder, out, err)
    loop = CollectionLoop([c for _, c in running], interval, output.interval, output.status)
    loop.run(count)
    return 0
