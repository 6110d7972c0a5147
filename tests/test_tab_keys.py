"""Tab keys typed ahead in a burst (as they arrive over SSH): the last one
wins, while the tabs are still coming up and after. Pilot, fake collectors
(no BPF, no root); the real console in tmux is in test_console_e2e."""

import random
import time

from fakes import FakeCollector
from test_cache_ui import FakeCacheCollector
from test_disk_ui import FakeDiskCollector
from test_tcp_ui import FakeTcpCollector
from textual import events
from textual.widgets import ContentSwitcher, TabbedContent
from textual.widgets._tabbed_content import ContentTabs
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.screens.help import HelpScreen
from bpftop.widgets.filter_bar import FilterBar

TAB_IDS = ["syscalls", "disk", "tcp", "cache"]


def slow(cls, delay):
    """The collector class, taking ``delay`` seconds to start, as a BCC
    compile does: its view fills while keys are being typed."""

    class Slow(cls):
        def start(self):
            time.sleep(delay)
            return super().start()

    return Slow


def collectors(delays=(0, 0, 0, 0)):
    kinds = (FakeCollector, FakeDiskCollector, FakeTcpCollector, FakeCacheCollector)
    return [slow(kind, d)() if d else kind() for kind, d in zip(kinds, delays)]


def shown(app):
    """The tab as the operator sees it: the tab state, the underlined tab,
    the visible pane and where the keys go must all agree."""
    tabs = app.main_screen.query_one(TabbedContent)
    bar = tabs.query_one(ContentTabs)
    switcher = tabs.query_one(ContentSwitcher)
    focused = app.focused
    pane = next((a.id for a in focused.ancestors_with_self if a.id in TAB_IDS), None) if focused else None
    return tabs.active, (bar.active or "").replace("--content-tab-", ""), switcher.current, pane


def post_burst(app, keys):
    # As the terminal driver does: all keys queued before any is handled.
    for key in keys:
        app.post_message(events.Key(key, key))


async def settle(pilot, app, want, rounds=5):
    """Until the tab shown is ``want`` (views can lag a refresh behind), then
    a few more rounds of the message loop: a late notice must not move it."""
    await wait_for(pilot, lambda: shown(app) == (want, want, want, want), timeout=10)
    for _ in range(rounds):
        await pilot.pause(0.02)
        assert shown(app) == (want, want, want, want)


async def test_random_bursts_last_key_wins_while_starting_and_running():
    rng = random.Random(11)
    # Tabs come up one by one while the first bursts are typed.
    app = BpftopApp(collectors((0, 0.4, 0.8, 1.2)), interval=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for n in range(15):
            keys = [rng.choice("1234") for _ in range(rng.randint(3, 6))]
            post_burst(app, keys)
            want = TAB_IDS[int(keys[-1]) - 1]
            try:
                await settle(pilot, app, want)
            except AssertionError:
                raise AssertionError(f"burst {n} {''.join(keys)}: shown {shown(app)}") from None


async def test_the_issue_burst_23411_right_after_start():
    app = BpftopApp(collectors((0.3, 0.3, 0.3, 0.3)), interval=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        post_burst(app, "23411")
        await settle(pilot, app, "syscalls")
        # The tab's own keys work at once: the focus is in it.
        post_burst(app, "3")
        await settle(pilot, app, "tcp")


async def test_tab_keys_are_text_in_the_filter_and_ignored_under_help():
    app = BpftopApp(collectors(), interval=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        post_burst(app, "2")
        await settle(pilot, app, "disk")
        await pilot.press("slash")
        post_burst(app, "34")
        await wait_for(pilot, lambda: app.main_screen.query_one("#filter-input").value == "34")
        assert app.main_screen.query_one(TabbedContent).active == "disk"
        await pilot.press("escape")
        assert not app.main_screen.query_one(FilterBar).is_open
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        post_burst(app, "41")
        await pilot.pause(0.1)
        assert app.main_screen.query_one(TabbedContent).active == "disk"
        await pilot.press("escape")
        post_burst(app, "41")
        await settle(pilot, app, "syscalls")
