"""``bpftop exporter``: the collectors, headless, through the one collection
loop, served as OpenMetrics by prometheus_client's HTTP server.

It starts serving at once: a collector still compiling, or one whose whole
ladder failed, shows as ``bpftop_collector_attached 0`` (with the reason)
while the others serve. SIGTERM and SIGINT end it cleanly (exit 0; every
program detached); SIGHUP reads the config files again and applies
``probes`` and ``interval``, switching collectors on and off as the
console's probes screen does.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Dict, List, Optional, Sequence

from .. import config as config_mod
from ..errors import UsageError
from ..loop import CollectionLoop
from ..numtext import is_decimal
from ..tabs import TABS, CollectorOptions
from .base import TabMetrics


def _listen(text: str) -> str:
    try:
        config_mod.parse_listen(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not ADDR:PORT (IPv6 as [ADDR]:PORT): {text!r}") from None
    return text


def _top(text: str) -> int:
    if not is_decimal(text) or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"not a number from 1 to 1000: {text!r}")
    return int(text)


def parser(cfg: config_mod.Config) -> argparse.ArgumentParser:
    from ..cli import _interval, _pids, _probes, _tab

    p = argparse.ArgumentParser(
        prog="bpftop exporter",
        description="Serve bpftop's numbers as Prometheus/OpenMetrics metrics over HTTP "
        f"(default {config_mod.DEFAULT_LISTEN}; 'bpftop config' shows the effective settings).",
    )
    p.add_argument("--listen", type=_listen, default=None, metavar="ADDR:PORT",
                   help=f"address to serve on (default from the config, else {config_mod.DEFAULT_LISTEN}); "
                   "anything but loopback must be asked for here or in the config")
    p.add_argument("--tls-cert", default=None, metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", default=None, metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("-d", "--interval", type=_interval, default=None, metavar="SECONDS",
                   help="collection interval (default from the config, else 1)")
    p.add_argument("-p", "--pid", type=_pids, action="append", default=[], metavar="PID",
                   help="only these processes (filtered in the kernel); repeat or comma-separate")
    p.add_argument("--tab", type=_tab, action="append", default=[], metavar="ID",
                   help=f"collectors to run; repeat for several (default all: {', '.join(TABS)})")
    p.add_argument("--probes", type=_probes, default=None, metavar="ID[,ID...]",
                   help="of those, the ones attached at start (default all); SIGHUP re-reads the config's probes")
    p.add_argument("--top", type=_top, default=None, metavar="N",
                   help="series kept per destination and per process (default from the config, else 10)")
    p.add_argument("--per-process", action="store_true", default=None,
                   help="also export per-process series (the top N by activity)")
    for spec in TABS.values():
        for option in spec.options:
            option.add_to(p)
    return p


def main(argv: Sequence[str], cfg: config_mod.Config) -> int:
    args = parser(cfg).parse_args(list(argv))
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    return run(args, cfg)


def _effective(args: argparse.Namespace, cfg: config_mod.Config) -> argparse.Namespace:
    """The command line over the config."""
    pick = {
        "listen": "exporter.listen", "tls_cert": "exporter.tls_cert", "tls_key": "exporter.tls_key",
        "interval": "interval", "top": "exporter.top_n", "per_process": "exporter.per_process", "probes": "probes",
    }
    for dest, key in pick.items():
        if getattr(args, dest) is None:
            setattr(args, dest, cfg.get(key))
    if not args.tab:
        args.tab = list(cfg.get("tabs")) or list(TABS)
    if args.latency is None:  # neither --latency nor --no-latency given
        args.latency = bool(cfg.get("latency"))
    return args


def run(args: argparse.Namespace, cfg: config_mod.Config) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from ..bpf import system
    from ..bpf.stats import StatsSwitch
    from ..modes import tab_settings
    from .metrics import ExporterMetrics

    args.probes_from_cli = args.probes is not None
    args.interval_from_cli = args.interval is not None
    args = _effective(args, cfg)
    host, port = config_mod.parse_listen(args.listen)
    system.check_privileges()
    pids = tuple(sorted({p for group in args.pid for p in group}))
    options = CollectorOptions(pids=pids, settings=tab_settings(args))
    collectors = [TABS[t].make_collector(options) for t in args.tab]
    enabled = [t for t in args.tab if args.probes is None or t in args.probes]
    stats = StatsSwitch()
    stats.open()
    loop: Optional[CollectionLoop] = None
    server: Any = None
    reload = threading.Event()
    stopping = threading.Event()
    previous: Dict[int, Any] = {}

    # Set by the signal handler, read by the main thread's wait: a handler
    # that raised or took a lock could land inside the loop's own locks.
    asked = {"stop": False}

    def stop_now(_signum: int, _frame: Optional[FrameType]) -> None:
        asked["stop"] = True

    def hang_up(_signum: int, _frame: Optional[FrameType]) -> None:
        reload.set()  # applied in a thread: the loop's lock may be held right here

    try:
        tab_metrics = {t: _metrics_of(t) for t in args.tab}
        metrics = ExporterMetrics(collectors, tab_metrics, args.top, bool(args.per_process))
        loop = CollectionLoop(collectors, args.interval, metrics.interval, metrics.status, enabled=enabled)
        metrics.read_costs = loop.read_costs
        if not stats.how:
            print(f"bpftop exporter: program run times stay 0: {stats.error}", file=sys.stderr, flush=True)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        try:
            server, _thread = start_http_server(port, host, registry=registry, certfile=args.tls_cert,
                                                keyfile=args.tls_key)
        except OSError as e:
            raise UsageError(f"cannot listen on {args.listen}: {e.strerror or e}") from None
        scheme = "https" if args.tls_cert else "http"
        print(f"bpftop exporter: serving {scheme}://{args.listen}/metrics", file=sys.stderr, flush=True)
        for sig, handler in ((signal.SIGTERM, stop_now), (signal.SIGINT, stop_now), (signal.SIGHUP, hang_up)):
            previous[sig] = signal.signal(sig, handler)
        threading.Thread(target=_reloader, args=(loop, reload, stopping, args), name="bpftop-reload",
                         daemon=True).start()
        loop.start()  # reads in its own thread; this one only waits for a signal
        while not asked["stop"] and loop.alive:
            time.sleep(0.2)
        if loop.error is not None:
            raise loop.error
        return 0
    finally:
        stopping.set()
        reload.set()
        # A second signal while detaching must not cut the clean-up short.
        for ignored in (signal.SIGTERM, signal.SIGINT):
            signal.signal(ignored, signal.SIG_IGN)
        if loop is not None:
            loop.stop()
        for c in collectors:
            c.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        stats.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _metrics_of(tab: str) -> TabMetrics:
    make = TABS[tab].metrics
    if make is None:
        raise UsageError(f"the {TABS[tab].title} tab has no metrics to export")
    return make()


def _reloader(loop: CollectionLoop, reload: threading.Event, stopping: threading.Event,
              args: argparse.Namespace) -> None:
    """On SIGHUP: the config files again; their probes and interval apply
    unless the command line set them."""
    given_probes = args.probes_from_cli
    given_interval = args.interval_from_cli
    while True:
        reload.wait()
        reload.clear()
        if stopping.is_set():
            return
        try:
            cfg = config_mod.load()
        except config_mod.ConfigError as e:
            print(f"bpftop exporter: config not reloaded: {e}", file=sys.stderr, flush=True)
            continue
        if not given_interval:
            loop.interval = float(cfg.get("interval"))
        if not given_probes:
            probes: Optional[List[str]] = cfg.get("probes")
            for tab in loop.tabs:
                loop.set_enabled(tab, probes is None or tab in probes)
        print("bpftop exporter: config reloaded", file=sys.stderr, flush=True)
