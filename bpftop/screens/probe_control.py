"""The probes screen's side of the app: what each collector has attached
and what it costs (BPF run-time statistics, switched on while the screen
is used), and switching a tab's probe off and on in the collection loop."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from ..bpf.stats import StatsSwitch
from ..collectors.base import Collector
from ..loop import CollectionLoop
from ..model import CollectorState, CollectorStatus
from ..model.common import STARTING_MESSAGE, SWITCHED_OFF_MESSAGE
from ..probes import ProbeMeter, ProbeRow
from ..tabs import TABS
from .main import MainScreen
from .probes import ProbesScreen


class ProbeControl:
    def __init__(self, collectors: Sequence[Collector[Any]], statuses: Dict[str, CollectorStatus],
                 enabled: Set[str], screen: MainScreen, notify: Callable[..., None], replay: bool) -> None:
        self.collectors = list(collectors)
        self.statuses = statuses  # the app's, shared: the latest status per tab
        self.enabled = enabled  # the app's, shared: the tabs switched on
        self.screen = screen
        self.notify = notify
        self.replay = replay
        self.collection: Optional[CollectionLoop] = None  # set once collection starts (never in a replay)
        self.meter = ProbeMeter()
        self.bpf_stats = StatsSwitch()

    def toggle_screen(self) -> None:
        app = self.screen.app
        if isinstance(app.screen, ProbesScreen):
            app.pop_screen()
            return
        if not self.bpf_stats.open():
            self.notify(f"no kernel cost figures: {self.bpf_stats.error}", severity="warning", timeout=5)
        app.push_screen(ProbesScreen(self.sample, self.note, self.toggle))

    def note(self) -> str:
        if self.bpf_stats.how:
            return f"kernel cost from BPF run-time statistics: {self.bpf_stats.how}"
        return f"no kernel cost figures: {self.bpf_stats.error}"

    def sample(self) -> List[ProbeRow]:
        return self.meter.sample(self.collectors, self.statuses)

    def toggle(self, tab: str) -> None:
        collection = self.collection
        if collection is None or tab not in collection.tabs:
            if self.replay:
                self.notify("a replay has no probes to switch: it shows what was recorded", timeout=4)
            return
        on = not collection.is_enabled(tab)
        collection.set_enabled(tab, on)
        if on:
            self.enabled.add(tab)
            self.statuses[tab] = CollectorStatus(tab, CollectorState.STARTING, message=STARTING_MESSAGE)
        else:
            self.enabled.discard(tab)
            self.statuses[tab] = CollectorStatus(tab, CollectorState.DISABLED, message=SWITCHED_OFF_MESSAGE)
        view = self.screen.view(tab)
        if view is not None:
            view.set_status(self.statuses[tab])
        self.notify(f"{TABS[tab].title}: {'switching on' if on else 'switched off, programs detached'}", timeout=3)

    def close(self) -> None:
        self.bpf_stats.close()
