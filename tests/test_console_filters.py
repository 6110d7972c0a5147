"""The console's filter state without a screen: fields per tab, what goes
to each collector, and that a refusal anywhere changes nothing anywhere."""

import pytest

from bpftop.collectors.capabilities import Capabilities
from bpftop.console_filters import FilterState, match_args
from bpftop.filters import FilterError, parse


class Pids:
    """A collector with a kernel pid filter; records what it was handed."""

    CAPABILITIES = Capabilities(kernel_filters=("pid",))

    def __init__(self, refuse=()):
        self.calls, self.refuse = [], set(refuse)

    def set_kernel_filter(self, field, values, exclude=False):
        assert field in self.CAPABILITIES.kernel_filters
        if field == "port":
            self.calls.append(("port", tuple(values), exclude))
            return
        if set(values) & self.refuse:
            raise ValueError(f"no room for {sorted(values)}")
        self.calls.append((tuple(values), exclude))

    def set_event_filter(self, flt):
        raise AssertionError("this collector declares no event filters")


class Events(Pids):
    CAPABILITIES = Capabilities(kernel_filters=("pid", "port"), event_filters=("comm", "addr"))

    def set_event_filter(self, flt):
        self.calls.append(("match", flt.comm, flt.comm_exclude, flt.addrs, flt.addr_exclude))


def state(**collectors):
    columns = {"a": ["pid", "comm", "count"], "b": ["pid", "count"], "c": ["dest", "comm"]}
    return FilterState(collectors, {t: t.upper() for t in collectors}, lambda t: columns.get(t, []))


def test_fields_come_from_columns_and_collector_filters():
    s = state(a=Pids(), c=Events())
    assert s.fields("a") == ["comm", "count", "pid"]
    assert s.fields("c") == ["addr", "comm", "dest", "pid", "port"]
    with pytest.raises(FilterError, match="the A tab has no field 'port'"):
        s.set("a", "port=80")


def test_each_collector_gets_its_part_and_only_when_it_changes():
    c = Events()
    s = state(c=c)
    assert s.needs_collector("c", "port=443")
    assert not s.needs_collector("c", "dest~443")  # columns only: no restart
    s.set("c", "port=443 comm=curl,wget addr!=10.0.0.0/8")
    assert ("port", (443,), False) in c.calls
    assert ("match", "^(curl|wget)$", False, ("10.0.0.0/8",), True) in c.calls
    n = len(c.calls)
    s.set("c", "port=443 comm=curl,wget addr!=10.0.0.0/8 dest~443")
    assert len(c.calls) == n


def test_refused_filter_changes_nothing():
    a = Pids(refuse={13})
    s = state(a=a)
    s.set("a", "pid=7")
    with pytest.raises(FilterError, match="kernel filter refused"):
        s.set("a", "pid=13")
    assert s.own["a"] == parse("pid=7") and a.calls == [((7,), False)]


def test_pin_applies_everywhere_and_a_refusal_rolls_every_tab_back():
    a, b, c = Pids(), Pids(refuse={7}), Pids()
    s = state(a=a, b=b, c=c)
    s.set("c", "pid=7")
    with pytest.raises(FilterError):
        s.toggle_pin("c", ["a", "b", "c"])
    assert a.calls == [((7,), False), ((), False)]  # a took it, then gave it back
    assert not s.pinned and s.own["c"] == parse("pid=7")
    b.refuse.clear()
    assert s.toggle_pin("c", ["a", "b", "c"]) == "filter pinned to every tab: pid=7"
    assert a.calls[-1] == b.calls[-1] == ((7,), False)
    assert s.toggle_pin("a", ["a", "b", "c"]).startswith("filter unpinned; it stays on A")
    assert s.effective("a") == parse("pid=7") and not s.effective("b")
    assert s.toggle_pin("b", ["a", "b", "c"]) is None  # nothing there to pin


def test_pinned_terms_a_tab_cannot_use_are_listed_as_ignored():
    s = state(a=Pids(), c=Events())
    s.set("c", "port=22 pid=5")
    s.toggle_pin("c", ["a", "c"])
    assert s.effective("a") == parse("pid=5") and s.ignored("a") == ["port=22"]


def test_match_args_refuses_what_it_cannot_say():
    with pytest.raises(FilterError):
        match_args(parse("comm~a comm~b"))
    with pytest.raises(FilterError):
        match_args(parse("addr~10"))
