"""The JSON times: every tab's ``time`` fields, as datetime writes them."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bpftop.jsonout import iso_time


def reference(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="milliseconds")


@settings(max_examples=3000, deadline=None)
@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False, allow_infinity=False))
def test_iso_time_is_datetimes_to_the_digit(epoch):
    assert iso_time(epoch) == reference(epoch)


def test_iso_time_rounds_and_carries_as_datetime():
    # Half a microsecond rounds to even, and a carry moves the second.
    for epoch in (0.0, 0.0000005, 0.0000015, 0.9999995, 0.9999996, 1733550000.9995, 1733550000.99949999,
                  1733550059.9999996, -0.0000005, -1.5, 253402300799.999):
        assert iso_time(epoch) == reference(epoch), epoch
    # The same second again after another one: nothing of the first is kept wrongly.
    assert [iso_time(e) for e in (10.25, 11.5, 10.75)] == [reference(e) for e in (10.25, 11.5, 10.75)]
