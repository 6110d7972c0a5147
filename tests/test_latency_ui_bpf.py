"""L on the Syscalls tab and the probes screen's latency row switch the
real collector's latency probe, and the console shows it (Pilot, real eBPF)."""

import pytest
from bpfprogs import held_bpf_objects, loaded_ids, wait_until_ids_gone
from testenv import scaled
from uihelpers import wait_for

from bpftop.app import BpftopApp
from bpftop.collectors.syscalls import SyscallsCollector
from bpftop.model import CollectorState
from bpftop.screens.probes import ProbesScreen

pytestmark = pytest.mark.bpf


def summary(app):
    return str(app.main_screen.query_one("#view-syscalls .tab-summary").render())


def attachments():
    held = held_bpf_objects()
    return len(held["link"]) + held["perf_events"]


async def test_l_and_the_probes_screen_switch_latency_live():
    collector = SyscallsCollector()
    app = BpftopApp([collector], interval=0.2)
    ids = set()
    try:
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_for(pilot, lambda: collector.status.state is CollectorState.RUNNING
                           and "latency off" in summary(app), timeout=scaled(60))
            ids = loaded_ids(collector)
            # Never switched on, latency's programs are not attached: syscalls pay for the exit program only.
            assert not collector.latency_attached
            before = attachments()
            await pilot.press("L")
            await wait_for(pilot, lambda: collector.latency and "latency on" in summary(app), timeout=scaled(10))
            # The first switch-on attaches sys_enter and sched_switch, once.
            assert attachments() == before + 2
            before += 2
            assert any("latency on" in str(n.message) for n in app._notifications)
            # The probes screen lists latency as a probe of its own, attached.
            await pilot.press("P")
            assert isinstance(app.screen, ProbesScreen)
            await wait_for(pilot, lambda: any(r.part == "latency" for r in app.screen.rows))
            keys = [r.key for r in app.screen.rows]
            row = next(r for r in app.screen.rows if r.part == "latency")
            assert row.state == "attached" and row.label == "syscalls latency"
            assert next(r for r in app.screen.rows if r.tab == "syscalls" and not r.part).state == "attached"
            # Space on that row switches latency off; the tab's own probe runs on.
            table = app.screen.query_one("#probes-table")
            table.move_cursor(row=keys.index(row.key))
            await pilot.press("space")
            await wait_for(pilot, lambda: not collector.latency, timeout=scaled(10))
            app.screen.refresh_rows()
            off = next(r for r in app.screen.rows if r.part == "latency")
            assert off.state == "off" and "only reads the switch" in off.reason
            assert collector.running and attachments() == before
            await pilot.press("escape")
            await wait_for(pilot, lambda: "latency off" in summary(app), timeout=scaled(10))
            assert loaded_ids(collector) == ids  # the same programs throughout
    finally:
        collector.stop()
    assert wait_until_ids_gone(ids) == []
