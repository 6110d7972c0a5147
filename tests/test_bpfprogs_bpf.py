"""The leftover check itself: a program this run loaded and did not free
is caught, by the process that held it, whatever other runs load."""

import pytest
from bpfprogs import ours, prog_ids, prog_list, wait_until_gone

from bpftop.collectors.syscalls import SyscallsCollector

pytestmark = pytest.mark.bpf


def test_a_program_left_loaded_fails_the_check_and_a_freed_one_passes():
    before = prog_ids()
    c = SyscallsCollector()
    c.start()
    try:
        loaded = {p["id"] for p in ours(prog_list(), before)}
        assert loaded
        left = wait_until_gone(before, timeout=1.0)
        assert {p["id"] for p in left} == loaded
        assert all(p["why"] == "a process of this run held it" for p in left)
    finally:
        c.stop()
    assert wait_until_gone(before) == []
