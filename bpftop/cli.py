"""Command line: ``bpftop`` (TUI), ``bpftop --once [--json]``, ``bpftop doctor``.

Every failure the operator can cause or meet (bad arguments, no privilege,
a kernel without a feature) ends in one line on stderr and an exit code,
never a traceback. BPFTOP_DEBUG=1 shows tracebacks for bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from . import __version__, malloc, modes
from . import config as config_mod
from .bpf import system
from .errors import BpftopError
from .loop import MAX_INTERVAL, MIN_INTERVAL
from .numtext import is_decimal
from .priority import DEFAULT_NICE
from .safetext import safe
from .stderr_guard import python_stderr_apart
from .tabs import PLANNED, TABS

if TYPE_CHECKING:
    from .recording.file import Recorder

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
        if not is_decimal(part) or not 0 < int(part) <= 2**22:
            raise argparse.ArgumentTypeError(f"not a process id: {part!r}")
        pids.append(int(part))
    return pids


def _tab(text: str) -> str:
    if text in TABS:
        return text
    if text in PLANNED:
        raise argparse.ArgumentTypeError(
            f"tab {text!r} is not in this version of bpftop (available: {', '.join(TABS)})"
        )
    raise argparse.ArgumentTypeError(f"no tab {text!r} (available: {', '.join(TABS)})")


def _count(text: str) -> int:
    if not is_decimal(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a number of intervals (1 or more): {text!r}")
    return int(text)


def _nice(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a nice value: {text!r}") from None
    if not -20 <= value <= 19:
        raise argparse.ArgumentTypeError(f"nice must be between -20 and 19, not {value}")
    return value


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
        "'bpftop doctor' reports what this kernel allows, 'bpftop exporter' serves Prometheus metrics "
        "(bpftop exporter --help), 'bpftop config' shows the settings from the config files.",
    )
    p.add_argument("-d", "--interval", type=_interval, default=None, metavar="SECONDS",
                   help="refresh interval (default from the config file, else 1)")
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
                   help="write every interval's snapshots of all active tabs to FILE, created new "
                   "(see --record-append)")
    p.add_argument("--record-append", action="store_true", help="with --record: add to FILE if it exists")
    p.add_argument("--replay", metavar="FILE", default=None,
                   help="open a recording in the console (no root needed); with --once, print one tab")
    p.add_argument("--at", metavar="TIME", default=None,
                   help="with --replay --once: the moment to print (+SECONDS, HH:MM[:SS] or an ISO time; "
                   "default the end)")
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
    p.add_argument(
        "--nice", type=_nice, default=None, metavar="N",
        help="the console's CPU priority: its threads' nice and, where the kernel groups tasks by session, "
        f"its session's (default from the config file, else {DEFAULT_NICE}; 0 leaves both as they are)",
    )
    p.add_argument("--version", action="version", version=f"bpftop {__version__}")
    return p


def _raise_exit(signum: int, _frame: Optional[FrameType]) -> None:
    raise SystemExit(128 + signum)


def _check_combinations(args: argparse.Namespace) -> None:
    p = parser()
    if args.record_append and not args.record:
        p.error("--record-append goes with --record FILE")
    # A flag pair sharing a dest (--latency/--no-latency) names the one given.
    tab_options = [o.flag for spec in TABS.values() for o in spec.options
                   if getattr(args, o.dest) not in (None, False) and o.const in (None, getattr(args, o.dest))]
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


def _apply_config(args: argparse.Namespace, cfg: config_mod.Config) -> None:
    """What the command line left unsaid, from the config files. A
    recording to replay keeps its own tabs and settings."""
    if args.interval is None:
        args.interval = float(cfg.get("interval"))
    if args.nice is None:
        args.nice = int(cfg.get("nice"))
    if args.snapshot_dir is None and cfg.get("snapshot_dir"):
        args.snapshot_dir = Path(cfg.get("snapshot_dir"))
    if args.replay:
        return
    if not args.tab and cfg.get("tabs"):
        args.tab = list(cfg.get("tabs"))[:1] if args.once else list(cfg.get("tabs"))
    if args.probes is None and cfg.given("probes"):
        args.probes = list(cfg.get("probes"))
    if args.latency is None:  # neither --latency nor --no-latency given
        args.latency = bool(cfg.get("latency"))
    if not args.record_append and args.record and cfg.get("record.append"):
        args.record_append = True


def config_main(argv: Sequence[str]) -> int:
    if argv:
        parser().error(f"config takes no arguments (got {' '.join(argv)})")
    cfg = config_mod.load()
    print(f"# system file: {safe(config_mod.system_path())}, user file: {safe(config_mod.user_path())}")
    for line in config_mod.describe(cfg):
        print(line)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    malloc.one_arena()  # before any thread starts (see malloc.py)
    try:
        if argv[:1] == ["doctor"]:
            flags = {DOCTOR_FLAGS.get(a, a) for a in argv[1:]}
            unknown = flags - set(DOCTOR_FLAGS.values())
            if unknown:
                parser().error(f"doctor takes only -v/--verbose and -q/--quick (got {' '.join(argv[1:])})")
            with python_stderr_apart():
                return doctor_main("verbose" in flags, "quick" in flags)
        if argv[:1] == ["config"]:
            return config_main(argv[1:])
        cfg = config_mod.load()
        if argv[:1] == ["exporter"]:
            from .exporter import serve

            with python_stderr_apart():
                return serve.main(argv[1:], cfg)
        args = parser().parse_args(argv)
        _check_combinations(args)
        _apply_config(args, cfg)
        pids = sorted({p for group in args.pid for p in group})
        if len(pids) > MAX_PIDS:
            parser().error(f"-p: at most {MAX_PIDS} processes can be filtered in the kernel (got {len(pids)})")
        # Leave through finally blocks (which detach BPF) on kill or hang-up.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_exit)
        if args.replay:
            return modes.replay(args)
        system.check_privileges()

        def recorder_for(header_fn: Callable[[], Dict[str, Any]]) -> Optional[Recorder]:
            if not args.record:
                return None
            from .recording.file import Recorder

            return Recorder(args.record, header_fn, append=args.record_append)

        with python_stderr_apart():
            if args.once or args.batch or args.json or args.count is not None:
                return modes.batch(args, pids, recorder_for)
            return modes.console(args, pids, recorder_for)
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


# verbose: what the compiler, BCC and libbpf printed per rung; quick: stop
# at the rung each collector would choose (a fleet check, and the kernel
# matrix's guests, where every compile takes a minute).
DOCTOR_FLAGS = {"-v": "verbose", "--verbose": "verbose", "-q": "quick", "--quick": "quick"}


def doctor_main(verbose: bool = False, quick: bool = False) -> int:
    from . import doctor

    return doctor.run(sys.stdout, verbose, quick)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
