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
import tempfile
import time
from typing import Iterator, List, Optional, Sequence

from . import __version__
from .bpf import system
from .errors import BpftopError
from .runner import MAX_INTERVAL, MIN_INTERVAL
from .tabs import PLANNED, TABS, CollectorOptions


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
    p.add_argument("--tab", type=_tab, default=None, metavar="ID", help=f"tab to open or print ({', '.join(TABS)})")
    p.add_argument("--once", action="store_true", help="collect one interval, print the tab as text and exit")
    p.add_argument("--json", action="store_true", help="with --once: print one JSON object instead of text")
    p.add_argument("--no-latency", action="store_true", help="syscalls: count only, do not time calls (cheaper)")
    p.add_argument(
        "--disk-queued", action="store_true",
        help="disk: latency from request creation/queueing, OS queue time included (biolatency -Q)",
    )
    p.add_argument("--version", action="version", version=f"bpftop {__version__}")
    return p


def _raise_exit(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _terminal_for_tui() -> Iterator[None]:
    """Keep the terminal for Textual alone.

    Textual draws on the stream behind ``sys.__stderr__``; BCC's compiler and
    libbpf write diagnostics straight to fd 2 from the collector threads,
    which would scribble over the screen. Textual gets a duplicate of the
    terminal and fd 2 goes to an unlinked temporary file, printed after the
    TUI closes when BPFTOP_DEBUG=1 (a failed compile's reason is in the tab
    and in ``bpftop doctor`` anyway).
    """
    saved_fd = os.dup(2)
    term = os.fdopen(os.dup(saved_fd), "w", encoding=getattr(sys.__stderr__, "encoding", None) or "utf-8")
    capture = tempfile.TemporaryFile(mode="w+b")
    old = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = term
    os.dup2(capture.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        sys.__stderr__, sys.stderr = old
        term.close()
        capture.seek(0)
        stray = capture.read().decode("utf-8", "replace").strip()
        capture.close()
        if stray and os.environ.get("BPFTOP_DEBUG"):
            print(stray, file=sys.stderr)


def _options(args: argparse.Namespace, pids: Sequence[int]) -> CollectorOptions:
    return CollectorOptions(pids=tuple(pids), latency=not args.no_latency, queued=args.disk_queued)


def _once(args: argparse.Namespace, pids: Sequence[int]) -> int:
    spec = TABS[args.tab or "syscalls"]
    collector = spec.make_collector(_options(args, pids))
    try:
        collector.start()
        time.sleep(args.interval)
        snapshot = collector.collect()
    finally:
        collector.stop()
    if args.json:
        print(json.dumps(spec.to_dict(snapshot)))
    else:
        sys.stdout.write(spec.to_text(snapshot))
    sys.stdout.flush()
    return 0


def _tui(args: argparse.Namespace, pids: Sequence[int]) -> int:
    from .app import BpftopApp  # Textual loads only for the TUI

    collectors = [spec.make_collector(_options(args, pids)) for spec in TABS.values()]
    app = BpftopApp(collectors, interval=args.interval, initial_tab=args.tab)
    try:
        with _terminal_for_tui():
            app.run()
    finally:
        app.stop_collectors()
    return app.return_code or 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["doctor"]:
            if len(argv) > 1:
                parser().error(f"doctor takes no arguments (got {' '.join(argv[1:])})")
            return doctor_main()
        args = parser().parse_args(argv)
        if args.json and not args.once:
            parser().error("--json needs --once (streaming arrives with headless mode)")
        pids = [p for group in args.pid for p in group]
        # Leave through finally blocks (which detach BPF) on kill or hang-up.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_exit)
        system.check_privileges()
        if args.once:
            return _once(args, pids)
        return _tui(args, pids)
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


def doctor_main() -> int:
    from . import doctor

    return doctor.run(sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
