"""The TUI driven by Pilot with a fake collector (no BPF, no root)."""


from fakes import FakeCollector
from textual.widgets import TabbedContent
from uihelpers import column_texts, wait_for, wait_rows

from bpftop.app import BpftopApp, step_interval
from bpftop.screens.help import HelpScreen
from bpftop.widgets.top_table import TopTable


async def test_tab_shows_rows_and_status():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#syscalls-table", TopTable)
        await wait_rows(pilot, table, 3)
        assert column_texts(table, 0) == ["read", "write", "openat"]
        procs = app.screen.query_one("#processes-table", TopTable)
        assert column_texts(procs, 1) == ["nginx", "sshd"]
        assert "running on fake" in str(app.screen.query_one(".tab-status").render())
    assert collector.stopped  # leaving the app detaches


async def test_sort_keys_and_reverse():
    app = BpftopApp([FakeCollector()], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#syscalls-table", TopTable)
        await wait_rows(pilot, table, 3)
        await pilot.press("less_than_sign")  # to SYSCALL, A-Z
        assert table.sort_column == 0
        assert column_texts(table, 0) == ["openat", "read", "write"]
        await pilot.press("r")
        assert column_texts(table, 0) == ["write", "read", "openat"]
        await pilot.press("r", "greater_than_sign", "greater_than_sign", "greater_than_sign")  # ERRORS
        assert table.sort_column == 3
        assert column_texts(table, 0)[0] == "openat"
        # A refresh keeps the chosen order.
        await pilot.pause(0.3)
        assert column_texts(table, 0)[0] == "openat"


async def test_pause_holds_the_screen_and_resume_shows_latest():
    app = BpftopApp([FakeCollector()], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("#syscalls-table", TopTable)
        await wait_rows(pilot, table, 3)
        await pilot.press("p")
        assert "PAUSED" in str(app.screen.query_one("#titlebar").render())
        frozen = column_texts(table, 1)
        await pilot.pause(0.5)
        assert column_texts(table, 1) == frozen
        await pilot.press("space")
        await pilot.pause(0.3)
        assert column_texts(table, 1) != frozen
        assert "PAUSED" not in str(app.screen.query_one("#titlebar").render())


async def test_help_opens_and_closes():
    app = BpftopApp([FakeCollector()], interval=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "quit" in text and "pause" in text and "sort" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_quit_key_exits_and_stops_collectors():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert collector.stopped


async def test_interval_keys_change_the_collection_loop():
    app = BpftopApp([FakeCollector()], interval=1.0)
    async with app.run_test() as pilot:
        await pilot.press("plus")
        assert app.interval == 2.0 and app.collection.interval == 2.0
        await pilot.press("minus", "minus")
        assert app.interval == 0.5
        assert "interval 0.5s" in str(app.screen.query_one("#titlebar").render())


def test_interval_steps_stop_at_the_ends():
    assert step_interval(60.0, 1) == 60.0
    assert step_interval(0.25, -1) == 0.25
    assert step_interval(1.5, 1) == 2.0


async def test_failed_collector_shows_why_and_the_app_keeps_running():
    app = BpftopApp([FakeCollector(fail="tracepoint raw_syscalls:sys_exit not found")], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        status = str(app.screen.query_one(".tab-status").render())
        assert "collector failed" in status and "raw_syscalls:sys_exit not found" in status
        await pilot.press("2")  # no second tab: a notice, no crash
        await pilot.press("tab")
        assert app.screen.query_one(TabbedContent).active == "syscalls"


async def test_tiny_terminal_and_resize_do_not_crash():
    app = BpftopApp([FakeCollector()], interval=0.1)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause(0.3)
        await pilot.resize_terminal(200, 60)
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)


async def test_a_process_named_with_escape_codes_cannot_drive_the_terminal():
    """A process may name itself ESC [ H ESC [ 2 J: shown raw, that cleared
    the operator's screen under the console. It shows escaped."""
    from fakes import snapshot

    from bpftop.model import ProcessRow

    evil = "\x1b[H\x1b[2J"
    snaps = (snapshot(i, processes=[ProcessRow(66, evil, 9)]) for i in range(10_000))
    app = BpftopApp([FakeCollector(snapshots=snaps)], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        procs = app.screen.query_one("#processes-table", TopTable)
        await wait_rows(pilot, procs, 1)
        assert column_texts(procs, 1) == ["\\x1b[H\\x1b[2J"]
        # The table's rows are in before the screen is painted with them.
        await wait_for(pilot, lambda: "\\x1b[H\\x1b[2J" in app.screen_text())
        assert "\x1b" not in app.screen_text()


async def test_once_every_running_tab_has_data_the_gc_is_frozen_once():
    """Not before: a tab still starting (compiling, say) holds it back."""
    import gc
    import time

    from test_tcp_ui import FakeTcpCollector

    from bpftop.model import CollectorState

    class SlowStart(FakeTcpCollector):
        def start(self):
            self.set_status(CollectorState.STARTING, "compiling")
            time.sleep(2.0)
            return super().start()

    app = BpftopApp([FakeCollector(), SlowStart()], interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app._settling is not None and "syscalls" in app._settling)
        await pilot.pause(0.5)
        assert app.statuses["tcp"].state is CollectorState.STARTING
        assert app._settling is not None and gc.get_freeze_count() == 0
        await wait_for(pilot, lambda: app._settling is None, timeout=10)
        assert gc.get_freeze_count() > 10_000
