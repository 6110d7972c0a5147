"""The TCP tab driven by Pilot with scripted snapshots (no BPF, no root)."""

import itertools

from fakes import FakeCollector
from tcp_aggregator import Aggregator
from test_tcp_text import raw, snapshot
from textual.widgets import Sparkline, TabbedContent
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.collectors import tcp_events as te
from bpftop.model import CollectorState, HookAttempt, HookKind
from bpftop.screens.help import HelpScreen
from bpftop.widgets.top_table import TopTable


class FakeTcpCollector(FakeCollector):
    """Each collect() adds one connect from pid 100 to port 443 and, on odd
    intervals, one refused connect from pid 200 to [2001:db8::1]:22."""

    tab = "tcp"
    title = "TCP"

    def __init__(self):
        self.agg = Aggregator()
        self._n = itertools.count(1)
        super().__init__(snapshots=self._gen())

    def _gen(self):
        while True:
            i = next(self._n)
            self.agg.feed(raw(te.EV_CONNECT, i, sport=0))
            self.agg.feed(raw(te.EV_ESTABLISHED, i, sport=30000 + i, lat=100_000))
            if i % 2:
                sk = 10_000 + i
                self.agg.feed(raw(te.EV_CONNECT, sk, pid=200, comm=b"ssh", family=te.AF_INET6, saddr="::1",
                                  daddr="2001:db8::1", dport=22))
                self.agg.feed(raw(te.EV_REFUSED, sk, family=te.AF_INET6, saddr="::1", daddr="2001:db8::1", dport=22))
            yield snapshot(self.agg, interval=0.1)

    def start(self):
        self._bpf = object()
        self.set_status(CollectorState.RUNNING, "", (HookAttempt("fake tcp", HookKind.TRACEPOINT, ("x",), True, "chosen"),))
        return self.status


def rows(table):
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]





async def test_tcp_tab_shows_tables_log_and_rate():
    app = BpftopApp([FakeCollector(), FakeTcpCollector()], interval=0.1, initial_tab="tcp")
    async with app.run_test(size=(160, 40)) as pilot:
        assert app.screen.query_one(TabbedContent).active == "tcp"
        log = app.screen.query_one("#tcp-events-table", TopTable)
        await wait_for(pilot, lambda: log.row_count >= 4)
        dests = rows(app.screen.query_one("#tcp-destinations-table", TopTable))
        assert dests[0][0] == "10.0.0.2:443" and any(r[0] == "[2001:db8::1]:22" for r in dests)
        procs = rows(app.screen.query_one("#tcp-processes-table", TopTable))
        assert procs[0][:2] == ["100", "curl"]
        ssh = next(r for r in procs if r[1] == "ssh")
        assert ssh[3] == ssh[5]  # every ssh connect was refused
        seqs = [int(r[0]) for r in rows(log)]
        assert seqs == sorted(seqs, reverse=True)  # newest on top
        assert len(app.screen.query_one("#tcp-rate", Sparkline).data) >= 2
        summary = str(app.screen.query_one("#view-tcp .tab-summary").render())
        assert "connects" in summary and "lost 0" in summary


async def test_freeze_key_holds_the_log_while_tables_update():
    app = BpftopApp([FakeTcpCollector()], interval=0.1)
    async with app.run_test(size=(160, 40)) as pilot:
        log = app.screen.query_one("#tcp-events-table", TopTable)
        dests = app.screen.query_one("#tcp-destinations-table", TopTable)
        await wait_for(pilot, lambda: log.row_count >= 4)
        log.focus()
        await pilot.press("f")
        assert "FROZEN" in str(app.screen.query_one("#tcp-log-title").render())
        frozen = rows(log)
        count = rows(dests)[0][1]
        await wait_for(pilot, lambda: rows(dests)[0][1] != count)
        assert rows(log) == frozen
        assert log.cursor_row == 0  # on the newest while at the top
        await pilot.press("down", "down")  # scrolling the frozen log
        assert log.cursor_row == 2
        await pilot.press("f")
        await wait_for(pilot, lambda: rows(log)[0] != frozen[0])
        # Moved down, the cursor stays on its event as new ones arrive above.
        assert rows(log)[log.cursor_row] == frozen[2]
        assert "FROZEN" not in str(app.screen.query_one("#tcp-log-title").render())


async def test_help_lists_the_tcp_keys_and_notes():
    app = BpftopApp([FakeTcpCollector()], interval=0.5)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "TCP tab" in text and "freeze / resume the event log" in text and "SYN_SENT" in text


async def test_at_80x24_every_table_shows_its_key_columns_and_the_log_its_destinations():
    app = BpftopApp([FakeTcpCollector()], interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.screen.query_one("#tcp-events-table", TopTable)
        procs = app.screen.query_one("#tcp-processes-table", TopTable)
        await wait_for(pilot, lambda: log.row_count >= 4 and procs.row_count >= 2)
        await pilot.pause(0.2)
        lines = app.screen_text().splitlines()
        assert max(len(line) for line in lines) <= 80

        def header(first):  # without the sort marks
            return next([w for w in line.split() if w not in ("v", "^")] for line in lines
                        if line.split()[:1] == [first])

        assert header("DESTINATION")[:5] == ["DESTINATION", "CONNECTS", "NEW", "FAILED", "AVG"]
        assert header("PID")[:6] == ["PID", "COMM", "UID", "CONNECTS", "NEW", "FAILED"]
        assert header("#")[:6] == ["#", "TIME", "PID", "COMM", "DESTINATION", "RESULT"]
        shown = "\n".join(lines)
        assert "10.0.0.2:443" in shown and "[2001:db8::1]:22" in shown and "refused" in shown
        assert "curl" in shown and "ssh" in shown
        # Wide again: the tables side by side, as before.
        await pilot.resize_terminal(160, 40)
        await pilot.pause(0.3)
        dests = app.screen.query_one("#tcp-destinations-table", TopTable)
        assert dests.region.y == procs.region.y and dests.region.x < procs.region.x
