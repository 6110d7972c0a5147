"""The console's CPU priority: its threads' nice and its session group's,
raised only where that raises them, and the group's put back."""

import os
import threading

import pytest

from bpftop import priority


@pytest.fixture
def group(tmp_path):
    path = tmp_path / "autogroup"
    path.write_text("/autogroup-25 nice 0\n")
    enabled = tmp_path / "enabled"
    enabled.write_text("1\n")
    return path, enabled


def write_nice(path, nice):
    path.write_text(f"/autogroup-25 nice {nice}\n")


def run_in_thread(fn):
    """``fn`` in a fresh thread: nice is per thread, and the test's own must not change."""
    out = {}
    t = threading.Thread(target=lambda: out.update(value=fn()))
    t.start()
    t.join()
    return out["value"]


@pytest.mark.parametrize("text, nice", [("/autogroup-25 nice 0\n", 0), ("/autogroup-1 nice -10", -10),
                                        ("", None), ("/autogroup-1 nice x", None), ("garbage", None)])
def test_the_group_nice_is_read_or_none(tmp_path, text, nice):
    path = tmp_path / "autogroup"
    path.write_text(text)
    assert priority.read_group_nice(str(path)) == nice
    assert priority.read_group_nice(str(tmp_path / "missing")) is None


def test_zero_changes_nothing(group):
    path, enabled = group
    raised = run_in_thread(lambda: (priority.raise_priority(0, str(path), str(enabled)),
                                    os.getpriority(os.PRIO_PROCESS, 0)))
    assert raised[0].thread_nice is None and raised[0].group_before is None
    assert raised[1] == os.getpriority(os.PRIO_PROCESS, 0)
    assert path.read_text() == "/autogroup-25 nice 0\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a negative nice needs root (CAP_SYS_NICE)")
def test_a_negative_nice_raises_the_thread_and_the_group_and_restore_puts_the_group_back(group):
    path, enabled = group

    def go():
        raised = priority.raise_priority(-7, str(path), str(enabled))
        started = {}
        child = threading.Thread(target=lambda: started.update(nice=os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()
        child.join()
        return raised, os.getpriority(os.PRIO_PROCESS, 0), started["nice"], path.read_text()

    raised, mine, childs, written = run_in_thread(go)
    assert mine == -7 and childs == -7  # a thread started afterwards inherits it
    assert written == "-7"
    assert raised.group_before == 0
    raised.restore()
    assert path.read_text() == "0"
    raised.restore()  # twice is harmless
    assert path.read_text() == "0"


@pytest.mark.skipif(os.geteuid() != 0, reason="a negative nice needs root (CAP_SYS_NICE)")
def test_a_higher_priority_already_chosen_is_kept(group):
    path, enabled = group
    write_nice(path, -15)

    def go():
        os.setpriority(os.PRIO_PROCESS, 0, -15)
        raised = priority.raise_priority(-10, str(path), str(enabled))
        return raised, os.getpriority(os.PRIO_PROCESS, 0)

    raised, mine = run_in_thread(go)
    assert mine == -15 and raised.thread_nice is None
    assert raised.group_before is None and path.read_text() == "/autogroup-25 nice -15\n"


def test_a_positive_nice_lowers_the_thread_only(group):
    path, enabled = group
    raised, mine = run_in_thread(lambda: (priority.raise_priority(5, str(path), str(enabled)),
                                          os.getpriority(os.PRIO_PROCESS, 0)))
    assert mine == 5 and raised.thread_nice == 5
    assert raised.group_before is None and path.read_text() == "/autogroup-25 nice 0\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a negative nice needs root (CAP_SYS_NICE)")
def test_without_session_groups_only_the_thread_changes(group):
    path, enabled = group
    enabled.write_text("0\n")
    raised, mine = run_in_thread(lambda: (priority.raise_priority(-5, str(path), str(enabled)),
                                          os.getpriority(os.PRIO_PROCESS, 0)))
    assert mine == -5 and raised.group_before is None
    assert path.read_text() == "/autogroup-25 nice 0\n"


def test_without_the_privilege_nothing_changes_and_nothing_is_raised(group, monkeypatch):
    path, enabled = group

    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    path.chmod(0o444)
    if os.geteuid() == 0:
        # root writes a read-only file: the group's refusal comes from a directory instead
        path = path.parent / "no-such-dir" / "autogroup"
    raised = priority.raise_priority(-10, str(path), str(enabled))
    assert raised.thread_nice is None and raised.group_before is None
