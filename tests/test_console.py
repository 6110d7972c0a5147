"""Console interaction driven by Pilot with fake collectors (no root): the
filter pane, pinning, the probes screen and switching probes, snapshots."""

import dataclasses
import os

from fakes import FakeCollector
from textual.widgets import Input
from uihelpers import column_texts, wait_rows

from bpftop.app import BpftopApp
from bpftop.collectors.capabilities import Capabilities
from bpftop.filters import parse
from bpftop.model import CollectorState
from bpftop.screens.probes import ProbesScreen
from bpftop.widgets.filter_bar import FilterBar
from bpftop.widgets.top_table import TopTable


def status_line(app):
    return str(app.screen.query_one("#view-syscalls .tab-status").render())


async def type_filter(pilot, text, enter=True, paste=False):
    await pilot.press("slash")
    field = pilot.app.screen.query_one("#filter-input", Input)
    if paste:
        field.value = text
    else:
        await pilot.press("ctrl+u")
        for ch in text:
            await pilot.press(ch if ch != " " else "space")
    if enter:
        await pilot.press("enter")
    await pilot.pause(0.05)


async def test_filter_narrows_applies_pid_in_kernel_and_shows_in_header():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        procs = app.screen.query_one("#processes-table", TopTable)
        await wait_rows(pilot, procs, 2)
        await type_filter(pilot, "comm~ngi")
        assert column_texts(procs, 1) == ["nginx"]
        assert not app.screen.query_one(FilterBar).is_open
        assert "filter: comm~ngi" in status_line(app)
        await pilot.pause(0.3)  # later snapshots stay filtered
        assert column_texts(procs, 1) == ["nginx"]
        await type_filter(pilot, "pid=7")
        assert collector.pid_filters[-1] == ((7,), False)
        assert column_texts(procs, 1) == ["sshd"]
        await type_filter(pilot, "")
        assert collector.pid_filters[-1] == ((), False)
        assert column_texts(procs, 1) == ["nginx", "sshd"]
        assert "filter:" not in status_line(app)


async def test_bad_filter_shows_error_and_keeps_the_previous_one():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        procs = app.screen.query_one("#processes-table", TopTable)
        await wait_rows(pilot, procs, 2)
        await type_filter(pilot, "comm~ngi")
        for bad, words in [("pid=abc", "whole numbers"), ("port=443", "no field 'port'"),
                           ("pid=99999999", "kernel filter refused")]:
            await type_filter(pilot, bad, paste=True)
            bar = app.screen.query_one(FilterBar)
            assert bar.is_open
            assert words in str(app.screen.query_one("#filter-help").render())
            assert column_texts(procs, 1) == ["nginx"]
            assert app.filters["syscalls"] == parse("comm~ngi")
            await pilot.press("escape")
            assert not bar.is_open
        assert collector.pid_filters == []  # nothing reached the kernel


async def test_filter_narrows_while_typing():
    app = BpftopApp([FakeCollector()], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        calls = app.screen.query_one("#syscalls-table", TopTable)
        await wait_rows(pilot, calls, 3)
        await type_filter(pilot, "syscall=write", enter=False)
        # Applied once typing pauses (FilterBar.DEBOUNCE_S), no Enter needed.
        for _ in range(40):
            if column_texts(calls, 0) == ["write"]:
                break
            await pilot.pause(0.05)
        assert column_texts(calls, 0) == ["write"]
        await pilot.press("escape")
        assert column_texts(calls, 0) == ["write"]  # Esc keeps what was applied


async def test_pin_and_unpin():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1, pinned=parse("pid=42"))
    async with app.run_test(size=(100, 30)) as pilot:
        procs = app.screen.query_one("#processes-table", TopTable)
        await wait_rows(pilot, procs, 1)
        for _ in range(20):
            if "filter:" in status_line(app):
                break
            await pilot.pause(0.05)
        assert "filter: pid=42 (pinned)" in status_line(app)
        assert column_texts(procs, 1) == ["nginx"]
        await pilot.press("F")  # unpin: stays on this tab
        assert not app.pinned and app.filters["syscalls"] == parse("pid=42")
        assert "(pinned)" not in status_line(app)
        await pilot.press("F")
        assert app.pinned == parse("pid=42") and not app.filters["syscalls"]
        assert collector.pid_filters == []  # the kernel already had pid=42 all along


async def test_probe_switched_off_detaches_and_on_again_reattaches():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_rows(pilot, app.screen.query_one("#syscalls-table", TopTable), 3)
        await pilot.press("P")
        assert isinstance(app.screen, ProbesScreen)
        assert app.screen.rows[0].tab == "syscalls" and app.screen.rows[0].hook == "fake"
        await pilot.press("space")
        for _ in range(40):
            await pilot.pause(0.05)
            if collector.stopped and app.statuses["syscalls"].state is CollectorState.DISABLED:
                break
        assert collector.stopped
        assert app.screen.rows[0].state == "detached"
        await pilot.press("escape")
        assert "paused by the operator" in status_line(app)
        await pilot.press("P", "space")
        for _ in range(40):
            await pilot.pause(0.05)
            if collector.starts == 2 and app.statuses["syscalls"].state is CollectorState.RUNNING:
                break
        assert collector.starts == 2 and not collector.stopped


async def test_probes_option_starts_detached():
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1, enabled=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert collector.starts == 0
        assert "paused by the operator" in status_line(app)


async def test_snapshot_is_the_screen(tmp_path):
    app = BpftopApp([FakeCollector()], interval=0.1, capture_dir=tmp_path / "snaps")
    async with app.run_test(size=(90, 26)) as pilot:
        await wait_rows(pilot, app.screen.query_one("#syscalls-table", TopTable), 3)
        await pilot.press("p")  # hold the screen still
        await pilot.pause(0.1)
        shown = app.screen_text()
        await pilot.press("s")
        files = list((tmp_path / "snaps").iterdir())
        assert len(files) == 1 and files[0].name.startswith("bpftop-syscalls-")
        text = files[0].read_text()
        head, body = text.split("\n", 1)
        assert head.startswith("# bpftop snapshot  host ") and "interval 0.1s" in head and "hooks: syscalls: fake" in head
        assert body == shown
        assert "\x1b" not in text and "━" in body and "read" in body
        assert oct(files[0].stat().st_mode & 0o777) == "0o600"
        await pilot.press("s")  # a second one never overwrites the first
        assert len(list((tmp_path / "snaps").iterdir())) == 2


async def test_snapshot_all_holds_every_tab(tmp_path):
    app = BpftopApp([FakeCollector()], interval=0.1, capture_dir=tmp_path)
    async with app.run_test(size=(90, 26)) as pilot:
        await wait_rows(pilot, app.screen.query_one("#syscalls-table", TopTable), 3)
        await pilot.press("S")
        await pilot.pause(0.2)
        files = list(tmp_path.iterdir())
        assert len(files) == 1 and files[0].name.startswith("bpftop-all-")
        assert "SYSCALL" in files[0].read_text()


async def test_unwritable_or_symlinked_snapshot_dir_notifies(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for where, words in [(link, "symlink"), (blocker / "sub", "cannot use")]:
        app = BpftopApp([FakeCollector()], interval=0.1, capture_dir=where)
        async with app.run_test(size=(90, 26)) as pilot:
            await pilot.pause(0.1)
            await pilot.press("s")
            await pilot.pause(0.1)
            messages = [n.message for n in app._notifications]
            assert any("snapshot not saved" in m and words in m for m in messages), messages
            assert app.is_running
    assert list(target.iterdir()) == []
    assert not os.path.exists(blocker / "sub")


def fake_tcp():
    from test_tcp_ui import FakeTcpCollector

    class Recording(FakeTcpCollector):
        CAPABILITIES = Capabilities(kernel_filters=("pid", "port"), event_filters=("comm", "addr"))

        def __init__(self):
            super().__init__()
            self.ports, self.matches = [], []

        def _set_kernel_filter(self, field, values, exclude):
            if field == "port":
                self.ports.append((tuple(values), exclude))
            else:
                super()._set_kernel_filter(field, values, exclude)

        def _set_event_filter(self, flt):
            if flt.comm == "(":
                raise ValueError("bad regex")
            self.matches.append(dataclasses.asdict(flt))

    return Recording()


async def test_filters_across_tabs_kernel_terms_and_pinning():
    sc, tcp = FakeCollector(), fake_tcp()
    app = BpftopApp([sc, tcp], interval=0.1, initial_tab="tcp")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.3)
        await type_filter(pilot, "port=443 comm~^curl$ pid=100", paste=True)
        assert tcp.ports[-1] == ((443,), False)
        assert tcp.matches[-1]["comm"] == "^curl$" and not tcp.matches[-1]["comm_exclude"]
        assert tcp.pid_filters[-1] == ((100,), False)
        assert sc.pid_filters == []  # other tabs untouched
        await pilot.press("F")  # pin it: syscalls gets pid and comm, has no port
        assert sc.pid_filters[-1] == ((100,), False)
        await pilot.press("1")
        await pilot.pause(0.1)
        line = status_line(app)
        assert "filter: comm~^curl$ pid=100 (pinned)" in line and "no such field here: port=443" in line
        await type_filter(pilot, "port=22", paste=True)  # the syscalls tab has no port
        assert "no field 'port'" in str(app.screen.query_one("#filter-help").render())
        await pilot.press("escape")
        await pilot.press("F")  # unpin from syscalls: tcp drops the terms, syscalls keeps them
        assert tcp.ports[-1] == ((), False) and tcp.pid_filters[-1] == ((), False)
        assert sc.pid_filters[-1] == ((100,), False)


async def test_redrawing_tables_never_asks_the_terminal_its_size(monkeypatch):
    """Rich asks the terminal (ioctl TIOCGWINSZ) each time its size is read
    and none was set, and a DataTable reads it for every cell it measures:
    hundreds of syscalls a second on an idle console. The app pins the size,
    and a resize changes it."""
    collector = FakeCollector()
    app = BpftopApp([collector], interval=0.1)
    asked = []
    real = os.get_terminal_size
    async with app.run_test(size=(100, 30)) as pilot:
        procs = app.screen.query_one("#processes-table", TopTable)
        await wait_rows(pilot, procs, 2)
        monkeypatch.setattr(os, "get_terminal_size", lambda *a: asked.append(a) or real(*a))
        await pilot.pause(0.5)  # five refreshes
        await pilot.resize_terminal(130, 40)
        await pilot.pause(0.3)
        assert asked == []
        assert tuple(app.console.size) == (130, 40)


async def test_an_exit_asked_before_the_first_layout_waits_for_it():
    """A q typed on the first paint, or a SIGTERM at start, asks for an exit
    before Textual has mounted the screen's widgets: the console exits,
    with the code asked for, once they are (an exit in the middle crashed
    Textual's tab bar with a traceback)."""
    app = BpftopApp([FakeCollector()], interval=0.1)
    app._exit_when_ready(7)  # what request_exit and q do before Ready
    assert app.return_code is None
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            if not app.is_running:
                break
            await pilot.pause(0.05)
    assert app.return_code == 7
