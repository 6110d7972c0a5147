"""The probes screen's side of the app: what each collector has attached
and what it costs (BPF run-time statistics, switched on while the screen
is used), and switching a tab's probe off and on in the collection loop."""

from __future__ import annotations

import threading
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
        self._switching = threading.Lock()  # one optional-probe switch at a time

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

    def toggle(self, tab: str, part: str = "") -> None:
        """Switch a tab's probe, or with ``part`` one of its collector's
        optional probes, off or on."""
        if part:
            self.toggle_part(tab, part)
            return
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

    def toggle_part(self, tab: str, part: str) -> None:
        """Switch an optional probe in a thread: its first switch-on
        attaches its program, which waits for BCC's lock, which another
        tab's compile may hold for seconds, and the console must not wait
        with it."""
        if self.replay:
            self.notify("a replay has no probes to switch: it shows what was recorded", timeout=4)
            return
        collector = next((c for c in self.collectors if c.tab == tab), None)
        if collector is None or part not in collector.optional_probes():
            return
        app = self.screen.app
        title = TABS[tab].title

        def switch() -> None:
            # Each press switches from the state the previous one left.
            with self._switching:
                on = not collector.optional_probes()[part]
                try:
                    collector.set_optional_probe(part, on)
                except Exception as exc:
                    failed: Optional[Exception] = exc
                else:
                    failed = None
            if failed is not None:  # an attach the kernel refused: say why, change nothing
                message, severity = f"{title} {part}: not switched {'on' if on else 'off'}: {failed}", "error"
            else:
                state = "on" if on else "off"
                message, severity = f"{title}: {part} {state}", "information"
                if not collector.running:
                    message += f" (from when {title} starts)"
            try:
                app.call_from_thread(self.notify, message, severity=severity, timeout=3)
            except RuntimeError:
                pass  # the console has gone meanwhile

        threading.Thread(target=switch, name=f"bpftop-{tab}-{part}", daemon=True).start()

    def close(self) -> None:
        self.bpf_stats.close()
