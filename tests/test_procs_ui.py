"""The Processes tab driven by Pilot with scripted snapshots (no BPF, no root)."""

import itertools

from fakes import FakeCollector
from test_console import type_filter
from test_procs_text import ESC_ARG, raw, snapshot
from textual.widgets import TabbedContent
from uihelpers import column_texts, wait_for

from bpftop.app import BpftopApp
from bpftop.collectors import procs_events as pe
from bpftop.collectors.capabilities import Capabilities
from bpftop.model import CollectorState, HookAttempt, HookKind
from bpftop.screens.help import HelpScreen
from bpftop.widgets.top_table import TopTable


class FakeProcsCollector(FakeCollector):
    """Each collect(): pid 100 execs a short-lived `true` with an escape
    sequence in its argv, which opens one file and fails one, and sends
    SIGTERM to pid 100; counts from a scripted kernel table."""

    tab = "procs"
    title = "Processes"
    CAPABILITIES = Capabilities(kernel_filters=("pid", "uid"))

    def __init__(self):
        self.log = pe.EventLog()
        self.table = pe.CountTable()
        self._n = itertools.count(1)
        super().__init__(snapshots=self._gen())

    def _gen(self):
        while True:
            i = next(self._n)
            pid = 1000 + i
            base = 10 * i * 1_000_000_000
            self.log.feed(raw(pe.EV_EXEC, pid=pid, ppid=100, comm=b"true", path=b"/bin/true",
                              argv=("true", "two words", ESC_ARG), ts=base))
            self.log.feed(raw(pe.EV_OPEN, pid=pid, comm=b"true", path=b"/etc/ld.so.cache", ret=3, ts=base))
            self.log.feed(raw(pe.EV_OPEN, pid=pid, comm=b"true", path=b"/missing", ret=-2, ts=base))
            self.log.feed(raw(pe.EV_SIGNAL, pid=pid, comm=b"true", target=100, flags=15, ts=base))
            self.log.feed(raw(pe.EV_EXIT, pid=pid, ppid=100, comm=b"true", ts=base + 3_000_000, start=base))
            rows, _ = self.table.update([(100, 1, 0, "bash", (0, 0, i, 0, 0, 0, i)),
                                         (pid, 100, 0, "true", (1, 1, 0, 2, 1, 1, 0))], {})
            yield snapshot(self.log, rows, interval=0.2)

    def start(self):
        self._bpf = object()
        self.set_status(CollectorState.RUNNING, "",
                        (HookAttempt("fake procs", HookKind.TRACEPOINT, ("x",), True, "chosen"),))
        return self.status


async def test_procs_tab_tables_logs_and_escaped_argv():
    app = BpftopApp([FakeCollector(), FakeProcsCollector()], interval=0.2, initial_tab="procs")
    async with app.run_test(size=(160, 45)) as pilot:
        assert app.screen.query_one(TabbedContent).active == "procs"
        procs = app.screen.query_one("#procs-processes-table", TopTable)
        short = app.screen.query_one("#procs-short-table", TopTable)
        execs = app.screen.query_one("#procs-execs-table", TopTable)
        await wait_for(pilot, lambda: execs.row_count >= 2 and short.row_count >= 1 and procs.row_count >= 2)
        assert "bash" in column_texts(procs, 3)
        assert column_texts(short, 2)[0] == "true" and column_texts(short, 4)[0] == "exit 0"
        args = column_texts(execs, 7)
        assert all("\x1b" not in a for a in args) and "'two words'" in args[0] and "\\x1b[2J" in args[0]
        screen = app.screen_text()
        assert "\x1b" not in screen and "\\x1b[2J" in screen
        summary = str(app.screen.query_one("#view-procs .tab-summary").render())
        assert "short-lived" in summary and "lost 0" in summary

        # e switches the event log: opens, then signals, then execs again.
        opens = app.screen.query_one("#procs-opens-table", TopTable)
        signals = app.screen.query_one("#procs-signals-table", TopTable)
        procs.focus()
        await pilot.press("e")
        assert opens.display and not execs.display
        await wait_for(pilot, lambda: opens.row_count >= 2)
        await type_filter(pilot, paste=True, text="err=ENOENT")
        await wait_for(pilot, lambda: set(column_texts(opens, 7)) == {"/missing"})
        assert set(column_texts(opens, 4)) == {"ENOENT"}
        await type_filter(pilot, paste=True, text="err!=0 path~ld")
        await wait_for(pilot, lambda: column_texts(opens, 7) == [""])  # the "no row matches" line
        await type_filter(pilot, paste=True, text="sig=term")
        await pilot.press("e")
        assert signals.display
        await wait_for(pilot, lambda: signals.row_count >= 1 and set(column_texts(signals, 4)) == {"SIGTERM"})
        await type_filter(pilot, paste=True, text="sig=KILL")
        await wait_for(pilot, lambda: column_texts(signals, 4) == [""])
        await pilot.press("e")
        assert execs.display


async def test_procs_filter_reaches_the_kernel_and_bad_terms_are_refused():
    collector = FakeProcsCollector()
    app = BpftopApp([collector], interval=0.2)
    async with app.run_test(size=(160, 45)) as pilot:
        execs = app.screen.query_one("#procs-execs-table", TopTable)
        await wait_for(pilot, lambda: execs.row_count >= 1)
        await type_filter(pilot, paste=True, text="pid=100")
        assert collector.pid_filters[-1] == ((100,), False)
        await type_filter(pilot, paste=True, text="nosuch=1")
        status = str(app.screen.query_one("#view-procs .tab-status").render())
        bar = " ".join(str(s.render()) for s in app.screen.query("FilterBar Static"))
        assert "no field 'nosuch'" in status + bar
        assert collector.pid_filters[-1] == ((100,), False)  # the previous filter stays


async def test_help_lists_the_procs_keys_and_notes():
    app = BpftopApp([FakeProcsCollector()], interval=0.5)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "Processes tab" in text and "event log: execs, opens, signals" in text and "Short-lived" in text


async def test_snapshot_of_the_procs_tab_escapes_argv(tmp_path):
    app = BpftopApp([FakeProcsCollector()], interval=0.2, capture_dir=tmp_path / "snaps")
    async with app.run_test(size=(160, 45)) as pilot:
        execs = app.screen.query_one("#procs-execs-table", TopTable)
        await wait_for(pilot, lambda: execs.row_count >= 1)
        await pilot.press("p")  # hold the screen still
        # A row in the table is painted at the next refresh, which may come
        # after the key on a loaded machine.
        await wait_for(pilot, lambda: "two words" in app.screen_text())
        await pilot.press("s")
        (snap,) = (tmp_path / "snaps").iterdir()
        assert snap.name.startswith("bpftop-procs-")
        text = snap.read_text()
        assert "\x1b" not in text and "\\x1b[2J" in text and "'two words'" in text
