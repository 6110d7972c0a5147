"""The tab registry: the one place that names and lists bpftop's tabs.

Tab keys 1..N, ``--tab`` and its choices, each tab's command-line options,
help, ``doctor``, headless and batch output, recording and replay, and the
console's tabs and probes screen all read ``TABS``. A new tab is its own
modules (collector, BPF source, model, text/JSON renderer, view) plus one
entry in ``_ENTRIES``; the README's "Adding a tab" tells how.

No Textual here, so ``--once`` and ``doctor`` stay light: a tab's view is
imported only when the console asks for it.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Type

from .collectors.base import Collector
from .collectors.bpf import BpfCollector
from .collectors.cache import CacheCollector
from .collectors.disk import DiskCollector
from .collectors.procs import ProcsCollector
from .collectors.syscalls import SyscallsCollector
from .collectors.tcp import TcpCollector
from .model import bpf as bpf_model
from .model import cache as cache_model
from .model import disk as disk_model
from .model import tcp as tcp_model
from .model.bpf import BpfSnapshot
from .model.cache import CacheSnapshot
from .model.disk import DiskSnapshot
from .model.history import GraphFeeder, History
from .model.procs import ProcsSnapshot
from .model.syscalls import SyscallsSnapshot
from .model.tcp import TcpSnapshot
from .render import bpf as bpf_render
from .render import cache as cache_render
from .render import disk as disk_render
from .render import procs as procs_render
from .render import syscalls as syscalls_render
from .render import tcp as tcp_render
from .safetext import safe_lines

if TYPE_CHECKING:
    from .exporter.base import TabMetrics
    from .views.base import TabView


@dataclass(frozen=True)
class TabOption:
    """A command-line option of one tab (harlequin's adapters declare theirs
    the same way): argparse adds it, and the parsed value reaches the tab's
    collector as ``CollectorOptions.get(dest)``."""

    flag: str
    dest: str
    help: str
    default: Any = None
    store_true: bool = False
    parse: Optional[Callable[[str], Any]] = None
    metavar: Optional[str] = None
    # A flag that stores this value (a pair like --latency / --no-latency
    # shares one dest: the last given wins).
    const: Any = None

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        if self.const is not None:
            parser.add_argument(self.flag, dest=self.dest, action="store_const", const=self.const,
                                default=self.default, help=self.help)
        elif self.store_true:
            parser.add_argument(self.flag, dest=self.dest, action="store_true", help=self.help)
        else:
            parser.add_argument(self.flag, dest=self.dest, type=self.parse or str, default=self.default,
                                metavar=self.metavar, help=self.help)


@dataclass(frozen=True)
class CollectorOptions:
    """What the command line hands every collector: the kernel-side process
    filter, and each tab's own options by their ``dest``."""

    pids: Tuple[int, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)

    def get(self, dest: str, default: Any = None) -> Any:
        value = self.settings.get(dest)
        return default if value is None else value


@dataclass(frozen=True)
class TabSpec:
    id: str
    title: str
    collector: Type[Collector[Any]]
    make_collector: Callable[[CollectorOptions], Collector[Any]]
    model: Type[Any]  # the snapshot dataclass its collector hands over
    render_text: Callable[[Any], str]
    render_dict: Callable[[Any], Dict[str, Any]]
    view: Callable[[], Type[TabView]]  # imports Textual: only the console calls it
    # Fields the filter can name before the first snapshot shows columns.
    filter_fields: Tuple[str, ...]
    help: str  # how to read its numbers (Rich markup), for the help screen
    options: Tuple[TabOption, ...] = ()
    # Option sets that change the collector's ladder, so doctor tries those
    # rungs too: (label, settings).
    doctor_variants: Tuple[Tuple[str, Mapping[str, Any]], ...] = ()
    graph: Optional[GraphFeeder] = None  # what of a snapshot its graphs keep
    # Its Prometheus metrics for ``bpftop exporter`` (imports prometheus_client:
    # only the exporter calls it).
    metrics: Optional[Callable[[], TabMetrics]] = None

    def to_text(self, snapshot: Any) -> str:
        # The renderers escape each field; this catches any they missed.
        return safe_lines(self.render_text(snapshot))

    def to_dict(self, snapshot: Any) -> Dict[str, Any]:
        return self.render_dict(snapshot)


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a valid regular expression: {text!r} ({e})") from None
    return text


def _bpf_metrics() -> TabMetrics:
    from .render.bpf_metrics import BpfMetrics

    return BpfMetrics()


def _syscalls_metrics() -> TabMetrics:
    from .render.syscalls_metrics import SyscallsMetrics

    return SyscallsMetrics()


def _syscalls_view() -> Type[TabView]:
    from .views.syscalls import SyscallsView

    return SyscallsView


def _disk_metrics() -> TabMetrics:
    from .render.disk_metrics import DiskMetrics

    return DiskMetrics()


def _disk_view() -> Type[TabView]:
    from .views.disk import DiskView

    return DiskView


def _tcp_metrics() -> TabMetrics:
    from .render.tcp_metrics import TcpMetrics

    return TcpMetrics()


def _tcp_view() -> Type[TabView]:
    from .views.tcp import TcpView

    return TcpView


def _cache_metrics() -> TabMetrics:
    from .render.cache_metrics import CacheMetrics

    return CacheMetrics()


def _cache_view() -> Type[TabView]:
    from .views.cache import CacheView

    return CacheView


def _procs_metrics() -> TabMetrics:
    from .render.procs_metrics import ProcsMetrics

    return ProcsMetrics()


def _procs_view() -> Type[TabView]:
    from .views.procs import ProcsView

    return ProcsView


def _bpf_view() -> Type[TabView]:
    from .views.bpf import BpfView

    return BpfView


_ENTRIES = (
    TabSpec(
        "syscalls", "Syscalls", SyscallsCollector,
        lambda o: SyscallsCollector(pids=o.pids, latency=bool(o.get("latency", False))),
        SyscallsSnapshot, syscalls_render.to_text, syscalls_render.to_dict, _syscalls_view,
        filter_fields=("syscall", "count", "errors", "pid", "comm"), help=syscalls_render.HELP,
        metrics=_syscalls_metrics,
        options=(TabOption("--latency", "latency",
                           "syscalls: time each call from the start (a probe of its own: L on the Syscalls tab "
                           "or the probes screen switches it live)", const=True),
                 TabOption("--no-latency", "latency", "syscalls: count only, do not time calls (the default)",
                           const=False)),
    ),
    TabSpec(
        "disk", "Disk", DiskCollector,
        lambda o: DiskCollector(queued=o.get("disk_queued", False)),
        DiskSnapshot, disk_render.to_text, disk_render.to_dict, _disk_view,
        filter_fields=(), help=disk_render.HELP,
        options=(TabOption("--disk-queued", "disk_queued",
                           "disk: latency from request creation/queueing, OS queue time included (biolatency -Q)",
                           store_true=True),),
        doctor_variants=(("--disk-queued", {"disk_queued": True}),),
        graph=disk_model.graph, metrics=_disk_metrics,
    ),
    TabSpec(
        "tcp", "TCP", TcpCollector,
        lambda o: TcpCollector(pids=o.pids),
        TcpSnapshot, tcp_render.to_text, tcp_render.to_dict, _tcp_view,
        filter_fields=(), help=tcp_render.HELP, graph=tcp_model.graph, metrics=_tcp_metrics,
    ),
    TabSpec(
        "cache", "Cache", CacheCollector,
        lambda o: CacheCollector(pids=o.pids, comm=o.get("cache_comm")),
        CacheSnapshot, cache_render.to_text, cache_render.to_dict, _cache_view,
        filter_fields=(), help=cache_render.HELP,
        options=(TabOption("--cache-comm", "cache_comm",
                           "cache: only processes whose name matches this regular expression",
                           parse=_regex, metavar="REGEX"),),
        graph=cache_model.graph, metrics=_cache_metrics,
    ),
    TabSpec(
        "procs", "Processes", ProcsCollector,
        lambda o: ProcsCollector(pids=o.pids),
        ProcsSnapshot, procs_render.to_text, procs_render.to_dict, _procs_view,
        filter_fields=("pid", "ppid", "uid", "comm", "path", "err", "sig", "argv"), help=procs_render.HELP,
        metrics=_procs_metrics,
    ),
    TabSpec(
        "bpf", "BPF", BpfCollector,
        lambda o: BpfCollector(pids=o.pids, enable_stats=o.get("bpf_stats", False)),
        BpfSnapshot, bpf_render.to_text, bpf_render.to_dict, _bpf_view,
        filter_fields=("id", "type", "name", "attach", "pid", "comm"), help=bpf_render.HELP,
        options=(TabOption("--bpf-stats", "bpf_stats",
                           "bpf: switch the kernel's BPF run-time statistics on while bpftop runs "
                           "(a BPF_ENABLE_STATS fd, released at exit)", store_true=True),),
        graph=bpf_model.graph, metrics=_bpf_metrics,
    ),
)

TABS: Dict[str, TabSpec] = {spec.id: spec for spec in _ENTRIES}
# Ids the interface contract reserves for tabs still to come.
PLANNED = tuple(t for t in ("procs", "bpf") if t not in TABS)


def new_history() -> History:
    """An empty graph history that knows what each tab graphs."""
    return History({spec.id: spec.graph for spec in _ENTRIES if spec.graph is not None})


def first() -> TabSpec:
    """The tab ``--once`` prints when none is named, and the console opens on."""
    return _ENTRIES[0]
