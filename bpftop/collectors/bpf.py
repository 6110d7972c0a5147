"""BPF collector: every BPF program loaded in the kernel, with no BPF
program of its own (Netflix's bpftop, plus attach points, owners and maps).

Each interval it walks the kernel's id lists through bpf(2)
(bpftop/bpf/objinfo.py): programs (type, name, tag, run_cnt and
run_time_ns, sizes, maps), links (what they attach to) and maps (type,
entries, memlock), and /proc for the processes holding them
(bpf_owners.py). Run counts are cumulative in the kernel; the snapshot has
the interval's difference.

Statistics: the kernel counts run time only while they are on. With
``enable_stats`` (``--bpf-stats``) the collector holds a BPF_ENABLE_STATS
fd, which the kernel releases when the process ends however it ends; it
never writes the sysctl.
"""

from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ..bpf import attachinfo, ladder, mapcount, objinfo, system
from ..bpf.stats import StatsSwitch, stats_enabled
from ..errors import PrivilegeError
from ..model import HookKind
from ..model.bpf import BpfSnapshot, Cost, MapRow, ProgramRow
from . import bpf_owners
from .base import Collector
from .capabilities import Capabilities

# A hash map's entries are counted key by key; past this many the count
# stops and says so (a full 1M-entry map would take a second).
KEY_LIMIT = 100_000
# /proc is read again for owners at most this often, and whenever a program
# appears: a scan readlinks every fd of every process (tens of ms on a busy
# host, and at 5 s the console's commonest syscalls after bpf(2) on an idle
# one), and holders of a loaded program rarely change. Owners that exited
# are dropped at every interval.
RESCAN_S = 30.0
STATS_FD = "bpftop --bpf-stats fd"
STATS_SYSCTL = "sysctl"
HOOK = "bpf(2) object info"


def _boot_epoch() -> float:
    """Epoch seconds of boot, for the kernel's load times (ns since boot)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


class Reader:
    """What the collector's one rung "loads": the statistics switch it may
    hold. ``cleanup()`` (as for a BCC object) lets go of it."""

    def __init__(self, stats: Optional[StatsSwitch]) -> None:
        self.stats = stats

    @property
    def holding_stats(self) -> bool:
        return self.stats is not None and self.stats.holding_fd

    def cleanup(self) -> None:
        if self.stats is not None:
            self.stats.close()
            self.stats = None


Counts = Tuple[int, int]  # run_cnt, run_time_ns


def read_programs() -> List[objinfo.ProgInfo]:
    out = []
    for prog_id in objinfo.next_ids(objinfo.BPF_PROG_GET_NEXT_ID):
        fd = objinfo.fd_by_id(objinfo.BPF_PROG_GET_FD_BY_ID, prog_id)
        if fd is None:
            continue  # unloaded meanwhile
        try:
            out.append(objinfo.prog_info(fd))
        except objinfo.BpfError:
            continue  # one program the kernel will not describe: the rest still show
        finally:
            os.close(fd)
    return out


# Link types whose program and target never change once made (the kernel
# has no update or detach for them): their info is read once, not every
# interval. The others (cgroup, xdp, netns, tcx, ...) can have their
# program replaced (BPF_LINK_UPDATE) or be detached.
FIXED_LINKS = frozenset({"raw_tracepoint", "tracing", "perf_event", "kprobe_multi", "uprobe_multi"})


def read_links(known: Dict[int, attachinfo.LinkInfo]) -> Dict[int, Set[str]]:
    """Program id -> attach points its links name. ``known`` keeps the
    info of links of FIXED_LINKS types between calls."""
    out: Dict[int, Set[str]] = {}
    present: Set[int] = set()
    for link_id in objinfo.next_ids(objinfo.BPF_LINK_GET_NEXT_ID):
        present.add(link_id)
        link = known.get(link_id)
        if link is None:
            fd = objinfo.fd_by_id(objinfo.BPF_LINK_GET_FD_BY_ID, link_id)
            if fd is None:
                continue
            try:
                link = attachinfo.link_info(fd)
            except objinfo.BpfError:
                continue
            finally:
                os.close(fd)
            if link.type in FIXED_LINKS:
                known[link_id] = link
        point = link.type if not link.target else (
            link.target if link.type == "perf_event" else f"{link.type} {link.target}")
        out.setdefault(link.prog_id, set()).add(point)
    for gone in set(known) - present:
        del known[gone]
    return out


# Counting a hash map's entries walks it (about 1 µs an entry): a count is
# kept this long before the map is walked again.
RECOUNT_S = 10.0
# map id -> (when counted, entries, complete)
Counted = Dict[int, Tuple[float, Optional[int], bool]]


def read_maps(count_ids: Set[int], known: Dict[int, objinfo.MapInfo],
              key_limit: int = KEY_LIMIT, counted_before: Optional[Counted] = None,
              now: float = 0.0) -> Tuple[List[MapRow], int, int]:
    """(rows for the maps in ``count_ids``, every map's memlock summed, how
    many maps there are). ``known`` keeps each map's info between calls: a
    map's type, sizes and (unless it grows: fixed_size) memlock never
    change, so only maps whose entries are counted or whose memory can
    grow are opened again. ``counted_before`` keeps entry counts for
    RECOUNT_S."""
    rows: List[MapRow] = []
    total = 0
    present: Set[int] = set()
    cache: Counted = {} if counted_before is None else counted_before
    for map_id in objinfo.next_ids(objinfo.BPF_MAP_GET_NEXT_ID):
        info = known.get(map_id)
        fresh = map_id in cache and now - cache[map_id][0] < RECOUNT_S
        counted = map_id in count_ids and (info is None or info.type in objinfo.KEYED_MAPS) and not fresh
        fd: Optional[int] = None
        if info is None or counted or not info.fixed_size:
            fd = objinfo.fd_by_id(objinfo.BPF_MAP_GET_FD_BY_ID, map_id, objinfo.BPF_F_RDONLY)
            if fd is None:
                continue  # freed meanwhile
        try:
            if fd is not None and (info is None or not info.fixed_size):
                info = known[map_id] = objinfo.map_info(fd)
            assert info is not None
            present.add(map_id)
            total += info.memlock or 0
            if map_id not in count_ids:
                continue
            entries: Optional[int] = None
            complete = True
            if info.type in objinfo.ARRAY_MAPS:
                entries = info.max_entries
            elif info.type in objinfo.KEYED_MAPS and fresh:
                _, entries, complete = cache[map_id]
            elif info.type in objinfo.KEYED_MAPS and fd is not None:
                try:
                    entries, complete = mapcount.count_entries(fd, info, key_limit)
                except objinfo.BpfError:
                    entries = None
                cache[map_id] = (now, entries, complete)
            rows.append(MapRow(info.id, info.type, info.name, info.max_entries, entries, complete, info.memlock))
        except objinfo.BpfError:
            continue
        finally:
            if fd is not None:
                os.close(fd)
    for gone in set(known) - present:
        del known[gone]
    for gone in set(cache) - present:
        del cache[gone]
    return rows, total, len(present)


class BpfCollector(Collector[BpfSnapshot]):
    tab = "bpf"
    title = "BPF"
    # Every filter field (name, type, attach, pid, comm) applies to the
    # table's rows: there is no kernel program to filter in. A walk opens,
    # marks, asks and closes every program in the kernel, and lists every
    # map and link: with only bpftop's own 27 programs, 230 syscalls, 80 %
    # of the console's own on an idle machine. Run counts are cumulative in
    # the kernel, so a reading when the tab is shown again covers the time
    # it was hidden.
    CAPABILITIES = Capabilities(read_while_hidden=False)

    def __init__(self, pids: Sequence[int] = (), enable_stats: bool = False, key_limit: int = KEY_LIMIT) -> None:
        super().__init__()
        self.pids = tuple(sorted(set(pids)))
        self.enable_stats = enable_stats
        self.key_limit = key_limit
        self._counted: Counted = {}
        self._prev: Dict[int, Counts] = {}
        self._prev_misses: Dict[int, int] = {}
        self._last = time.monotonic()
        self._stats_note = ""
        self._was_on = False
        self._holders: Optional[bpf_owners.Holders] = None
        self._scanned_at = 0.0
        self._scanned_ids: Set[int] = set()
        self._maps: Dict[int, objinfo.MapInfo] = {}
        self._links: Dict[int, attachinfo.LinkInfo] = {}

    # -- ladder -----------------------------------------------------------
    def strategies(self) -> List[ladder.Strategy]:
        return [
            ladder.Strategy(
                HOOK, HookKind.SYSCALL,
                ("BPF_PROG_GET_NEXT_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_LINK_GET_NEXT_ID", "/proc/*/fdinfo"),
                self._check, self._load,
                note="reads the kernel's program, link and map lists; loads no BPF program",
            ),
        ]

    @staticmethod
    def _check() -> str:
        system.check_privileges()
        try:
            next(objinfo.next_ids(objinfo.BPF_PROG_GET_NEXT_ID), None)
        except objinfo.BpfError as e:
            if os.geteuid() == 0:
                return f"BPF_PROG_GET_NEXT_ID refused: {e.strerror}"
            raise PrivilegeError(f"bpftop needs root to list BPF programs ({e.strerror})") from None
        return ""

    def _load(self) -> Reader:
        stats: Optional[StatsSwitch] = None
        self._stats_note = ""
        if self.enable_stats:
            stats = StatsSwitch(sysctl_fallback=False)
            if not stats.open():
                self._stats_note = stats.error
                stats = None
        return Reader(stats)

    def _on_loaded(self) -> None:
        self._baseline()

    def _owners(self, prog_ids: Set[int]) -> bpf_owners.Holders:
        now = time.monotonic()
        if self._holders is None or now - self._scanned_at >= RESCAN_S or not prog_ids <= self._scanned_ids:
            self._holders = bpf_owners.scan()
            self._scanned_at, self._scanned_ids = now, set(prog_ids)
        else:
            self._holders.drop_exited()
        return self._holders

    def _baseline(self) -> None:
        progs = read_programs()
        self._was_on = self._stats_state(self._owners({p.id for p in progs}))[0]
        self._prev = {p.id: (p.run_cnt or 0, p.run_time_ns or 0) for p in progs}
        self._prev_misses = {p.id: p.recursion_misses or 0 for p in progs}
        self._last = time.monotonic()

    def _stats_state(self, holders: bpf_owners.Holders) -> Tuple[bool, str]:
        reader = self._bpf
        if isinstance(reader, Reader) and reader.holding_stats:
            return True, STATS_FD
        if stats_enabled():
            return True, STATS_SYSCTL
        others = [h for h in holders.stats_holders if h.pid != os.getpid()]
        if others:
            # Another tool's BPF_ENABLE_STATS fd (Netflix's bpftop holds one).
            return True, "BPF_ENABLE_STATS fd of " + ", ".join(f"{h.pid} {h.comm}" for h in others)
        return False, ""

    # -- reading --------------------------------------------------------------
    def _read(self) -> BpfSnapshot:
        progs = read_programs()
        now = time.monotonic()
        interval = now - self._last
        links = read_links(self._links)
        holders = self._owners({p.id for p in progs})
        stats_on, how = self._stats_state(holders)
        # Statistics on at both ends of the interval: its counts are whole.
        counted = stats_on and self._was_on
        self._was_on = stats_on
        boot = _boot_epoch()
        own = os.getpid()
        rows: List[ProgramRow] = []
        cpu_total = 0.0
        wanted_maps: Set[int] = set()
        current: Dict[int, Counts] = {}
        misses_now: Dict[int, int] = {}
        for p in progs:
            counts = (p.run_cnt or 0, p.run_time_ns or 0)
            current[p.id] = counts
            # A program not in the previous reading was loaded during the
            # interval: all its counts are the interval's.
            before = self._prev.get(p.id, (0, 0))
            cost: Optional[Cost] = None
            if counted and p.run_cnt is not None:
                cost = Cost(max(0, counts[0] - before[0]), max(0, counts[1] - before[1]), interval)
                cpu_total += cost.cpu_pct
            misses: Optional[int] = None
            if p.recursion_misses is not None:
                misses_now[p.id] = p.recursion_misses
                misses = max(0, p.recursion_misses - self._prev_misses.get(p.id, 0))
            owners = tuple(sorted(holders.owners.get(p.id, ()), key=lambda o: o.pid))
            if self.pids and not any(o.pid in self.pids for o in owners):
                continue
            attach = tuple(sorted(links.get(p.id, set()) | holders.attach.get(p.id, set())))
            wanted_maps.update(p.map_ids)
            rows.append(ProgramRow(
                id=p.id, type=p.type, name=p.name, tag=p.tag, attach=attach, cost=cost,
                total_runs=p.run_cnt if p.run_cnt else None,
                total_run_ns=p.run_time_ns if p.run_cnt else None,
                recursion_misses=misses, loaded_at=boot + p.load_time_ns / 1e9, uid=p.uid,
                xlated_bytes=p.xlated_bytes, jited_bytes=p.jited_bytes, verified_insns=p.verified_insns,
                map_ids=p.map_ids, owners=owners, ours=any(o.pid == own for o in owners),
                pinned=tuple(holders.pinned.get(p.id, ())),
            ))
        maps, map_bytes, map_count = read_maps(wanted_maps, self._maps, self.key_limit, self._counted,
                                               time.monotonic())
        self._prev, self._prev_misses, self._last = current, misses_now, now
        return BpfSnapshot(
            interval_s=interval,
            taken_at=time.time(),
            rows=tuple(rows),
            maps=tuple(maps),
            stats_on=stats_on,
            stats_how=how,
            programs_total=len(progs),
            cpu_pct_total=cpu_total if counted else None,
            map_bytes_total=map_bytes,
            maps_total=map_count,
            own_pid=own,
            stats_note=self._stats_note,
            pid_filter=self.pids,
            hook=HOOK,
        )
