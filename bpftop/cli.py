"""Command line: ``bpftop`` (TUI), ``bpftop --once [--json]``, ``bpftop doctor``.

Every failure the operator can cause or meet (bad arguments, no privilege,
a kernel without a feature) ends in one line on stderr and an exit code,
never a traceback. BPFTOP_DEBUG=1 shows tracebacks for bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from . import __version__
from .bpf import system
from .errors import BpftopError, UsageError
from .loop import MAX_INTERVAL, MIN_INTERVAL
from .stderr_guard import python_stderr_apart, terminal_for_tui
from .tabs import PLANNED, TABS, CollectorOptions, first

MAX_PIDS = 1024  # the kernel-side pid filter map's size (collectors/pidfilter.py)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(f"interval must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds")
    return value


def _pids(text: str) -> List[int]:
    pids = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 0 < int(part) <= 2**22:
            raise argparse.ArgumentTypeError(f"not a process id: {part!r}")
        pids.append(int(part))
    return pids


def _tab(text: str) -> str:
    if text in TABS:
        return text
    if text in PLANNED:
        raise argparse.ArgumentTypeError(f"tab {text!r} is not in this version of bpftop (available: {', '.join(TABS)})")
    raise argparse.ArgumentTypeError(f"no tab {text!r} (available: {', '.join(TABS)})")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a number of intervals (1 or more): {text!r}")
    return int(text)


def _probes(text: str) -> List[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("name at least one probe")
    for tab in ids:
        _tab(tab)
    return ids


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpftop",
        description="A top-style console for Linux kernel observability on eBPF. "
        "'bpftop doctor' reports what this kernel allows.",
    )
    p.add_argument("-d", "--interval", type=_interval, default=1.0, metavar="SECONDS", help="refresh interval (default 1)")
    p.add_argument(
        "-p", "--pid", type=_pids, action="append", default=[], metavar="PID",
        help="only these processes (filtered in the kernel); repeat or comma-separate",
    )
    p.add_argument(
        "--tab", type=_tab, action="append", default=[], metavar="ID",
        help=f"tab to open, or tabs to print in batch mode; repeat for several ({', '.join(TABS)})",
    )
    p.add_argument("--once", action="store_true", help="collect one interval, print the tab as text and exit (-n 1)")
    p.add_argument("-b", "--batch", action="store_true", help="no console: print every interval to stdout, like top -b")
    p.add_argument("-n", "--count", type=_count, default=None, metavar="N",
                   help="batch mode: stop after N intervals (default: run until stopped)")
    p.add_argument("--json", action="store_true",
                   help="batch mode with one JSON object per interval (JSON Lines) instead of text")
    p.add_argument("--record", metavar="FILE", default=None,
                   help="write every interval's snapshots of all active tabs to FILE, created new (see --record-append)")
    p.add_argument("--record-append", action="store_true", help="with --record: add to FILE if it exists")
    p.add_argument("--replay", metavar="FILE", default=None,
                   help="open a recording in the console (no root needed); with --once, print one tab")
    p.add_argument("--at", metavar="TIME", default=None,
                   help="with --replay --once: the moment to print (+SECONDS, HH:MM[:SS] or an ISO time; default the end)")
    for spec in TABS.values():
        for option in spec.options:
            option.add_to(p)
    p.add_argument(
        "--probes", type=_probes, default=None, metavar="ID[,ID...]",
        help="probes to attach at start (default all); the rest can be switched on from the probes screen (P)",
    )
    p.add_argument(
        "--snapshot-dir", type=Path, default=None, metavar="DIR",
        help="where s and S save text snapshots (default $XDG_STATE_HOME/bpftop or ~/.local/state/bpftop)",
    )
    p.add_argument("--version", action="version", version=f"bpftop {__version__}")
    return p


def _raise_exit(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def _tab_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """Every tab's own options as parsed, by their dest."""
    return {o.dest: getattr(args, o.dest) for spec in TABS.values() for o in spec.options}


def _options(args: argparse.Namespace, pids: Sequence[int]) -> CollectorOptions:
    return CollectorOptions(pids=tuple(pids), settings=_tab_settings(args))


def _batch(args: argparse.Namespace, pids: Sequence[int], recorder_for) -> int:
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


def _stop(collectors, recorder, quiet: bool = False) -> None:
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


def _header(collectors, args: argparse.Namespace, pids: Sequence[int]) -> dict:
    from .recording.file import header

    hooks = {c.tab: c.hook for c in collectors if c.hook}
    filters = {"pinned": "pid=" + ",".join(map(str, pids))} if pids else {}
    return header([c.tab for c in collectors], args.interval, hooks, filters)


def _replay(args: argparse.Namespace) -> int:
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


def _run_console(app) -> int:
    """Run the Textual app with a lifeline that ends it on a signal or a
    lost terminal even when the UI is stuck; the exit code says why."""
    from .lifeline import Lifeline

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


def _tui(args: argparse.Namespace, pids: Sequence[int], recorder_for) -> int:
    _need_terminal()
    from .app import BpftopApp  # Textual loads only for the TUI
    from .filters import parse
    from .recording.file import RecordingLost

    collectors = [spec.make_collector(_options(args, pids)) for spec in TABS.values()]
    # -p is already in force in the kernel: the console shows it as a pinned
    # filter, which the operator can change or unpin like any other.
    pinned = parse("pid=" + ",".join(map(str, pids))) if pids else parse("")
    recorder = recorder_for(lambda: app.recording_header())
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


def _check_combinations(args: argparse.Namespace) -> None:
    p = parser()
    if args.record_append and not args.record:
        p.error("--record-append goes with --record FILE")
    tab_options = [o.flag for spec in TABS.values() for o in spec.options if getattr(args, o.dest) not in (None, False)]
    if args.replay and (args.record or args.pid or args.probes or tab_options):
        named = ", ".join(tab_options)
        p.error(f"--replay shows a recording: --record, -p, --probes and the tabs' options ({named or 'none given'})"
                " do not apply")
    if args.at is not None and not args.replay:
        p.error("--at goes with --replay")
    if args.once and args.count is not None:
        p.error("--once is -n 1: give one of them")
    if len(args.tab) > 1 and args.once:
        p.error("--once prints one tab; for several, use -n 1")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["doctor"]:
            verbose = argv[1:] in (["-v"], ["--verbose"])
            if len(argv) > 1 and not verbose:
                parser().error(f"doctor takes only -v/--verbose (got {' '.join(argv[1:])})")
            with python_stderr_apart():
                return doctor_main(verbose)
        args = parser().parse_args(argv)
        _check_combinations(args)
        pids = sorted({p for group in args.pid for p in group})
        if len(pids) > MAX_PIDS:
            parser().error(f"-p: at most {MAX_PIDS} processes can be filtered in the kernel (got {len(pids)})")
        # Leave through finally blocks (which detach BPF) on kill or hang-up.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_exit)
        if args.replay:
            return _replay(args)
        system.check_privileges()

        def recorder_for(header_fn):
            if not args.record:
                return None
            from .recording.file import Recorder

            return Recorder(args.record, header_fn, append=args.record_append)

        with python_stderr_apart():
            if args.once or args.batch or args.json or args.count is not None:
                return _batch(args, pids, recorder_for)
            return _tui(args, pids, recorder_for)
    except BpftopError as e:
        print(f"bpftop: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (| head): nothing more to say, and nowhere to say it.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a bug: one line unless asked for the traceback
        if os.environ.get("BPFTOP_DEBUG"):
            raise
        print(f"bpftop: internal error: {type(e).__name__}: {e} (BPFTOP_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def doctor_main(verbose: bool = False) -> int:
    from . import doctor

    return doctor.run(sys.stdout, verbose)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
