"""The tabs bpftop has: id, title, collector, and plain-text and JSON forms.

No Textual here, so ``--once`` and ``doctor`` stay light; the TUI maps tab
ids to views in app.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from .collectors.base import Collector
from .render import cache as cache_render
from .render import disk as disk_render
from .render import syscalls as syscalls_render
from .render import tcp as tcp_render
from .safetext import safe_lines


@dataclass(frozen=True)
class CollectorOptions:
    """What the command line hands every collector; each takes what it uses."""

    pids: Tuple[int, ...] = ()
    latency: bool = True  # syscalls: time each call
    queued: bool = False  # disk: latency from queue insert, not from issue
    cache_comm: Optional[str] = None  # cache: rows whose comm matches this regex


@dataclass(frozen=True)
class TabSpec:
    id: str
    title: str
    make_collector: Callable[[CollectorOptions], Collector]
    render_text: Callable[[Any], str]
    to_dict: Callable[[Any], Dict[str, Any]]

    def to_text(self, snapshot: Any) -> str:
        # The renderers escape each field; this catches any they missed.
        return safe_lines(self.render_text(snapshot))


def _syscalls(opts: CollectorOptions) -> Collector:
    from .collectors.syscalls import SyscallsCollector

    return SyscallsCollector(pids=opts.pids, latency=opts.latency)


def _disk(opts: CollectorOptions) -> Collector:
    from .collectors.disk import DiskCollector

    return DiskCollector(queued=opts.queued)
def _tcp(opts: CollectorOptions) -> Collector:
    from .collectors.tcp import TcpCollector

    return TcpCollector(pids=opts.pids)


def _cache(opts: CollectorOptions) -> Collector:
    from .collectors.cache import CacheCollector

    return CacheCollector(pids=opts.pids, comm=opts.cache_comm)


TABS: Dict[str, TabSpec] = {
    "syscalls": TabSpec("syscalls", "Syscalls", _syscalls, syscalls_render.to_text, syscalls_render.to_dict),
    "disk": TabSpec("disk", "Disk", _disk, disk_render.to_text, disk_render.to_dict),
    "tcp": TabSpec("tcp", "TCP", _tcp, tcp_render.to_text, tcp_render.to_dict),
    "cache": TabSpec("cache", "Cache", _cache, cache_render.to_text, cache_render.to_dict),
}
# Ids the interface contract reserves for tabs still to come.
PLANNED = ("bpf",)
