"""How each mode runs once the command line is parsed: batch (``--once``,
``-b``, ``--json``), replay of a recording, and the console."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from . import first_paint, priority
from .collectors.base import Collector
from .errors import BpftopError, UsageError
from .hostline import host_line
from .stderr_guard import terminal_for_tui
from .tabs import TABS, CollectorOptions, first

if TYPE_CHECKING:
    from .app import BpftopApp
    from .recording.file import Recorder

# Makes the recording (None without --record) given how to ask for its header.
RecorderFor = Callable[[Callable[[], Dict[str, Any]]], Optional["Recorder"]]


def tab_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """Every tab's own options as parsed, by their dest."""
    return {o.dest: getattr(args, o.dest) for spec in TABS.values() for o in spec.options}


def _options(args: argparse.Namespace, pids: Sequence[int]) -> CollectorOptions:
    return CollectorOptions(pids=tuple(pids), settings=tab_settings(args))


def batch(args: argparse.Namespace, pids: Sequence[int], recorder_for: RecorderFor) -> int:
    from . import headless

    tabs = args.tab or ([first().id] if args.once else list(TABS))
    specs = [TABS[t] for t in tabs]
    collectors = [spec.make_collector(_options(args, pids)) for spec in specs]
    recorder = recorder_for(lambda: _header(collectors, args, pids))
    count = 1 if args.once else args.count
    try:
        code = headless.run(specs, collectors, args.interval, count, args.json, recorder)
    except BaseException:
        _stop(collectors, recorder, quiet=True)
        raise
    _stop(collectors, recorder)
    return code


def _stop(collectors: Sequence[Collector[Any]], recorder: Optional[Recorder], quiet: bool = False) -> None:
    """Detach everything and close the recording. Failing to write its end
    raises (exit 3), unless another error is already on its way out: then
    it is one more line on stderr."""
    from .recording.file import RecordingLost

    for collector in collectors:
        collector.stop()
    if recorder is None:
        return
    try:
        recorder.close()
    except RecordingLost as e:
        if not quiet:
            raise
        print(f"bpftop: {e}", file=sys.stderr)


def _header(collectors: Sequence[Collector[Any]], args: argparse.Namespace, pids: Sequence[int]) -> Dict[str, Any]:
    from .recording.file import header

    hooks = {c.tab: c.hook for c in collectors if c.hook}
    filters = {"pinned": "pid=" + ",".join(map(str, pids))} if pids else {}
    return header([c.tab for c in collectors], args.interval, hooks, filters)


def replay(args: argparse.Namespace) -> int:
    from .recording.file import read
    from .recording.replay import Replay

    recording = read(args.replay)
    replay = Replay(recording)
    if recording.problem:
        print(f"bpftop: {args.replay}: {recording.problem}", file=sys.stderr)
    if args.once or args.json or args.batch or args.count:
        tab = (args.tab or [replay.tabs[0]])[0]
        if tab not in replay.tabs:
            raise BpftopError(f"{args.replay} has no {tab} tab (it has: {', '.join(replay.tabs)})")
        replay.position = len(replay.ticks) - 1
        if args.at is not None:
            replay.seek(replay.parse_time(args.at))
        snaps = replay.snapshots()
        if tab not in snaps:
            when = f" at or before {args.at}" if args.at is not None else ""
            raise BpftopError(f"no {tab} snapshot{when} in {args.replay}")
        spec = TABS[tab]
        if args.json:
            print(json.dumps(spec.to_dict(snaps[tab])))
        else:
            sys.stdout.write(spec.to_text(snaps[tab]))
        sys.stdout.flush()
        return 0
    _need_terminal()
    from .app import BpftopApp
    from .recording.replay import RecordedTab

    hooks = {}
    for snap in replay.ticks[-1].values():
        hooks[snap.tab] = getattr(snap.snapshot, "hook", "")
    stand_ins = [RecordedTab(t, TABS[t].title, hooks.get(t, "")) for t in TABS if t in replay.tabs]
    if not stand_ins:
        raise BpftopError(f"{args.replay} holds no tab this bpftop knows ({', '.join(replay.tabs)})")
    initial = args.tab[0] if args.tab and args.tab[0] in replay.tabs else None
    app = BpftopApp(stand_ins, interval=float(replay.recording.header.get("interval", 1.0)), initial_tab=initial,
                    capture_dir=args.snapshot_dir, replay=replay)
    return _run_console(app)


def _need_terminal() -> None:
    if not (os.isatty(0) and os.isatty(1)):
        raise UsageError(
            "the console needs a terminal on stdin and stdout (ssh -t, not a pipe); "
            "for output to a pipe or file use -b (text) or --json"
        )


def _run_console(app: BpftopApp) -> int:
    """Run the Textual app with a lifeline that ends it on a signal or a
    lost terminal even when the UI is stuck; the exit code says why."""
    from .lifeline import TERMINAL_LOST, Lifeline, terminal_lost

    lifeline = Lifeline(app.request_exit, app.stop_collectors, healthy=app.output_healthy)
    lifeline.start()
    try:
        with terminal_for_tui():
            app.run()
    except Exception:
        # Writing to a terminal that went away fails on the way out too:
        # that is the hang-up itself, not a bug.
        if lifeline.code is None and not terminal_lost():
            raise
    finally:
        lifeline.stop()
    if lifeline.code is not None:
        return lifeline.code
    if terminal_lost():
        return TERMINAL_LOST
    return app.return_code or 0


def console(args: argparse.Namespace, pids: Sequence[int], recorder_for: RecorderFor) -> int:
    _need_terminal()
    tabs = list(TABS)
    initial = args.tab[0] if args.tab else tabs[0]
    # Before any thread starts: each inherits the nice of the thread that starts it.
    raised = priority.raise_priority(args.nice)
    try:
        with first_paint.shown(host_line(args.interval), [TABS[t].title for t in tabs],
                               tabs.index(initial) if initial in tabs else 0):
            return _console(args, pids, recorder_for)
    finally:
        raised.restore()


def _console(args: argparse.Namespace, pids: Sequence[int], recorder_for: RecorderFor) -> int:
    from .app import BpftopApp  # Textual loads only for the TUI
    from .filters import parse
    from .recording.file import RecordingLost

    collectors = [spec.make_collector(_options(args, pids)) for spec in TABS.values()]
    # -p is already in force in the kernel: the console shows it as a pinned
    # filter, which the operator can change or unpin like any other.
    pinned = parse("pid=" + ",".join(map(str, pids))) if pids else parse("")
    app: Optional[BpftopApp] = None
    recorder = recorder_for(lambda: app.recording_header() if app is not None else {})
    app = BpftopApp(
        collectors, interval=args.interval, initial_tab=args.tab[0] if args.tab else None, pinned=pinned,
        enabled=args.probes, capture_dir=args.snapshot_dir, recorder=recorder,
    )
    try:
        code = _run_console(app)
    except BaseException:
        app.stop_collectors()
        _stop([], recorder, quiet=True)
        raise
    app.stop_collectors()
    _stop([], recorder)
    if app.recording_state is not None and app.recording_state.failed:
        # The console said so while it ran; the exit code tells scripts.
        print(f"bpftop: recording stopped: {app.recording_state.message}", file=sys.stderr)
        return code or RecordingLost.exit_code
    return code
