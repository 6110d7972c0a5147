"""The hook ladder picks the first rung that loads and keeps every reason."""

import pytest

from bpftop.bpf.ladder import Strategy, climb, require
from bpftop.errors import NoStrategyError, PrivilegeError
from bpftop.model import HookKind


def rung(name, check="", load=None):
    def default_load():
        return name

    return Strategy(name, HookKind.TRACEPOINT, (name,), lambda: check, load or default_load)


def boom(msg):
    def load():
        raise RuntimeError(msg)

    return load


def test_first_loading_rung_wins_and_failures_keep_reasons():
    result = climb([rung("a", check="no such tracepoint"), rung("b", load=boom("attach failed")), rung("c"), rung("d")])
    assert result.loaded == "c"
    assert [(a.strategy, a.ok) for a in result.attempts] == [("a", False), ("b", False), ("c", True), ("d", None)]
    assert result.attempts[0].reason == "no such tracepoint"
    assert result.attempts[1].reason == "attach failed"


def test_try_all_releases_the_rest():
    released = []
    result = climb([rung("a"), rung("b")], try_all=True, release=released.append)
    assert result.loaded == "a" and released == ["b"]
    assert [a.ok for a in result.attempts] == [True, True]


def test_no_rung_raises_with_every_reason():
    with pytest.raises(NoStrategyError) as e:
        require(climb([rung("a", check="kprobes missing"), rung("b", load=boom("EPERM"))]), "disk collector")
    assert "kprobes missing" in str(e.value) and "EPERM" in str(e.value)


def test_privilege_error_stops_the_climb():
    def load():
        raise PrivilegeError("needs root")

    with pytest.raises(PrivilegeError):
        climb([rung("a", load=load), rung("b")])
