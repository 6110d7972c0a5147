"""The console's filters: each tab's own, the one pinned to every tab, the
fields each tab can name, and handing each collector its part (BPF map
filters, the TCP collector's event filter) as its CAPABILITIES declare.
Plain Python: the app asks, this module decides; nothing here draws."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple

from .collectors.capabilities import Capabilities, EventFilter, KernelField
from .filters import NO_FILTER, Filter, FilterError, Value, check_fields, parse


class Filterable(Protocol):
    """What this module needs of a collector (collectors.base.Collector has it)."""

    CAPABILITIES: ClassVar[Capabilities]

    def set_kernel_filter(self, field: KernelField, values: Iterable[Value], exclude: bool = False) -> None: ...

    def set_event_filter(self, flt: EventFilter) -> None: ...


NOTHING = Capabilities()


def match_args(flt: Filter) -> EventFilter:
    """The comm and address terms as a collector's set_event_filter takes
    them (one comm regex, one address list); FilterError when the filter
    asks for more than that can say."""
    comm = [t for t in flt.terms if t.field == "comm"]
    addrs = [t for t in flt.terms if t.field == "addr"]
    if len(comm) > 1 or len(addrs) > 1:
        raise FilterError("this tab takes one comm term and one addr term")
    out = EventFilter()
    if comm:
        t = comm[0]
        if t.op not in ("~", "!~", "=", "!="):
            raise FilterError(f"{t.text}: comm takes = != ~ !~")
        pattern = t.values[0] if t.op in ("~", "!~") else "^(" + "|".join(re.escape(str(v)) for v in t.values) + ")$"
        out = replace(out, comm=str(pattern), comm_exclude=t.op in ("!~", "!="))
    if addrs:
        t = addrs[0]
        if t.op not in ("=", "!="):
            raise FilterError(f"{t.text}: addr takes = or != (addresses or networks, comma-separated)")
        out = replace(out, addrs=tuple(str(v) for v in t.values), addr_exclude=t.op == "!=")
    return out


class FilterState:
    def __init__(
        self,
        collectors: Mapping[str, Filterable],
        titles: Mapping[str, str],
        view_fields: Callable[[str], Iterable[str]],
        pinned: Filter = NO_FILTER,
    ) -> None:
        self.collectors = collectors
        self.titles = titles
        self.view_fields = view_fields  # the columns a tab's view shows
        self.pinned = pinned
        self.own: Dict[str, Filter] = {}

    # -- what a tab can name --------------------------------------------------
    def capabilities(self, tab: str) -> Capabilities:
        collector = self.collectors.get(tab)
        return collector.CAPABILITIES if collector is not None else NOTHING

    def kernel_fields(self, tab: str) -> List[KernelField]:
        return list(self.capabilities(tab).kernel_filters)

    def _matches_events(self, tab: str) -> bool:
        return bool(self.capabilities(tab).event_filters)

    def fields(self, tab: str) -> List[str]:
        caps = self.capabilities(tab)
        return sorted(set(self.view_fields(tab)) | set(caps.kernel_filters) | set(caps.event_filters))

    def pinned_here(self, tab: str) -> Filter:
        """The pinned terms this tab has fields for."""
        fields = set(self.fields(tab))
        return Filter(tuple(t for t in self.pinned.terms if any(k in fields for k in t.keys())))

    def effective(self, tab: str) -> Filter:
        """The pinned terms this tab has fields for, and the tab's own."""
        return self.pinned_here(tab).combined(self.own.get(tab, NO_FILTER))

    def ignored(self, tab: str) -> List[str]:
        """Pinned terms this tab has no field for."""
        effective = self.effective(tab)
        return [t.text for t in self.pinned.terms if t not in effective.terms]

    # -- the collectors' part ---------------------------------------------------
    def _collector_part(self, tab: str, flt: Filter) -> Tuple[Any, ...]:
        sets = tuple(flt.kernel_set(f) for f in self.kernel_fields(tab))
        match = (match_args(flt),) if self._matches_events(tab) else ()
        return sets + (match,)

    def _apply(self, tab: str, new: Filter, old: Filter) -> None:
        """Hand the collector its part of ``new`` (it has ``old``'s); on a
        refusal put back what was there and raise FilterError."""
        collector = self.collectors.get(tab)
        if collector is None:
            return
        done: List[Tuple[KernelField, Optional[Tuple[Tuple[Value, ...], bool]]]] = []
        try:
            for field in self.kernel_fields(tab):
                want, had = new.kernel_set(field), old.kernel_set(field)
                if want == had:
                    continue
                values, exclude = want or ((), False)
                collector.set_kernel_filter(field, values, exclude=exclude)
                done.append((field, had))
            if self._matches_events(tab):
                want_match, had_match = match_args(new), match_args(old)
                if want_match != had_match:
                    collector.set_event_filter(want_match)
        except (ValueError, OSError) as e:
            for field, had in reversed(done):
                values, exclude = had or ((), False)
                try:
                    collector.set_kernel_filter(field, values, exclude=exclude)
                except (ValueError, OSError):
                    pass
            if isinstance(e, FilterError):
                raise
            raise FilterError(f"the kernel filter refused it: {e}") from None

    # -- changes ----------------------------------------------------------------
    def _parse_for(self, tab: str, text: str) -> Filter:
        own = parse(text)
        check_fields(own, self.fields(tab), self.titles.get(tab, tab))
        return own

    def needs_collector(self, tab: str, text: str) -> bool:
        """Would this text change what the collector filters (and so restart
        its counts)? FilterError when it does not parse or apply."""
        new = self.pinned_here(tab).combined(self._parse_for(tab, text))
        return self._collector_part(tab, new) != self._collector_part(tab, self.effective(tab))

    def set(self, tab: str, text: str) -> Filter:
        """Parse and apply a tab's own filter; FilterError leaves the
        previous one in force, in the collector too."""
        own = self._parse_for(tab, text)
        old = self.effective(tab)
        previous = self.own.get(tab, NO_FILTER)
        self.own[tab] = own
        try:
            self._apply(tab, self.effective(tab), old)
        except FilterError:
            self.own[tab] = previous
            raise
        return own

    def toggle_pin(self, tab: str, tabs: Iterable[str]) -> Optional[str]:
        """Pin ``tab``'s filter to every tab, or unpin (the terms stay on
        ``tab``). Returns what happened, None when there is nothing to pin;
        FilterError (and no change anywhere) when a collector refuses."""
        tabs = list(tabs)
        before = {t: self.effective(t) for t in tabs}
        saved_pinned, saved_own = self.pinned, dict(self.own)
        if self.pinned:
            self.own[tab] = self.pinned.combined(self.own.get(tab, NO_FILTER))
            self.pinned = NO_FILTER
            note = f"filter unpinned; it stays on {self.titles.get(tab, tab)}"
        else:
            own = self.own.get(tab, NO_FILTER)
            if not own:
                return None
            self.pinned, self.own[tab] = own, NO_FILTER
            note = f"filter pinned to every tab: {own.text}"
        applied = []
        try:
            for t in tabs:
                self._apply(t, self.effective(t), before[t])
                applied.append(t)
        except FilterError:
            after = {t: self.effective(t) for t in applied}
            self.pinned, self.own = saved_pinned, saved_own
            for t in applied:
                try:
                    self._apply(t, before[t], after[t])
                except FilterError:
                    pass
            raise
        return note
