"""The key line at the bottom and what a tab key costs (Pilot, no BPF)."""

from fakes import FakeCollector
from test_tcp_ui import FakeTcpCollector
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.widgets.key_bar import KeyBar


def bar_text(app) -> str:
    return str(app.screen.query_one(KeyBar).render())


async def test_the_key_line_shows_the_tabs_own_keys_and_follows_the_tab():
    app = BpftopApp([FakeCollector(), FakeTcpCollector()], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "latency on/off" in bar_text(app))
        assert "q quit" in bar_text(app) and "freeze" not in bar_text(app)
        await pilot.press("2")
        await wait_for(pilot, lambda: "freeze" in bar_text(app))
        assert "latency" not in bar_text(app) and "q quit" in bar_text(app)
        # The live console shows no replay keys (they do nothing here).
        assert "next" not in bar_text(app) and "jump" not in bar_text(app)


async def test_a_click_on_the_key_line_presses_that_key():
    app = BpftopApp([FakeCollector()], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        # The line is complete once the focused view's own keys are in it.
        await wait_for(pilot, lambda: "latency on/off" in bar_text(app))
        offset = bar_text(app).index("p pause") + 1
        assert not app.paused
        await pilot.click(KeyBar, offset=(offset, 0))
        await wait_for(pilot, lambda: app.paused)


async def test_a_tab_key_redraws_the_screen_once_or_twice_not_for_an_animation():
    """A tab switch used to slide the tab underline in about 18 frames,
    each a redraw of the whole screen (most of a switch's CPU)."""
    app = BpftopApp([FakeCollector(), FakeTcpCollector()], interval=60)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        screen = app.screen
        frames = []
        original = screen._compositor_refresh

        def counted():
            frames.append(1)
            original()

        screen._compositor_refresh = counted
        for key in ("2", "1", "2", "1"):
            await pilot.press(key)
            await pilot.pause(0.4)
        assert 4 <= len(frames) <= 30, len(frames)  # 88 with the animation
