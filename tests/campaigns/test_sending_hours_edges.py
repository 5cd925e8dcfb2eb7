"""Sending hours at their edges: the minute a window opens and closes, windows that end
at 24:00 or past midnight, moments with seconds, and answers in the caller's zone. Every
moment is given: nothing here reads the clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from campaigns.hours import (
    ADVERTISING_HOURS,
    VIETNAM,
    SendingWindow,
    closes_after,
    held_until,
    sending_ends,
)
from campaigns.spec import SpecError, load_spec
from tests.campaigns.test_spec import VALID, write

DAY = SendingWindow.parse("07:00-21:00")
ALL_DAY = SendingWindow.parse("00:00-24:00")


def vn(hour: int, minute: int = 0, day: int = 28, second: float = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=VIETNAM) + timedelta(seconds=second)


def test_a_window_keeps_its_minutes():
    window = SendingWindow.parse("07:30-21:45")
    assert window == SendingWindow(time(7, 30), time(21, 45))
    assert not window.is_open(vn(7, 29)) and window.is_open(vn(7, 30))
    assert window.is_open(vn(21, 44)) and not window.is_open(vn(21, 45))


@pytest.mark.parametrize(
    ("hours", "needle"),
    [
        ("7-22", "sending_hours: write sending hours as HH:MM-HH:MM, e.g. 07:00-22:00"),
        ("08:00-08:00", "sending_hours: the window is empty: start and end are the same"),
    ],
)
def test_a_bad_window_in_a_campaign_file_says_what_to_write(tmp_path, hours, needle):
    path = write(tmp_path, VALID.replace("[messages]", f'sending_hours = "{hours}"\n[messages]'))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert needle in str(caught.value)


def test_a_window_opens_on_its_first_minute():
    evening = SendingWindow.parse("07:00-24:00")
    assert evening.is_open(vn(7)) and not evening.is_open(vn(6, 59))
    assert evening.is_open(vn(23, 59)) and not evening.is_open(vn(0))
    night = SendingWindow.parse("20:00-02:00")
    assert night.is_open(vn(20)) and not night.is_open(vn(19, 59))


def test_a_window_ending_at_one_in_the_morning_runs_past_midnight():
    night = SendingWindow.parse("20:00-01:00")
    assert night.is_open(vn(23, 30)) and night.is_open(vn(0, 30))
    assert not night.is_open(vn(1)) and not night.is_open(vn(12))


def test_the_next_opening_is_on_the_minute_and_in_the_callers_zone():
    assert ADVERTISING_HOURS.next_opening(vn(5, second=30.5)) == vn(7)
    in_vietnam = ADVERTISING_HOURS.next_opening(vn(5))
    in_utc = ADVERTISING_HOURS.next_opening(vn(5).astimezone(UTC))
    assert in_vietnam == in_utc == vn(7)
    assert in_vietnam.utcoffset() == timedelta(hours=7) and in_utc.utcoffset() == timedelta(0)


def test_a_window_closes_on_its_last_minute_in_the_callers_zone():
    assert closes_after(DAY, vn(20, 30, second=15.5)) == vn(21)
    # Open all day: from midnight it closes at the next midnight, not at once.
    assert closes_after(ALL_DAY, vn(0)) == vn(0, day=29)
    in_utc = closes_after(DAY, vn(20).astimezone(UTC))
    assert in_utc == vn(21) and in_utc.utcoffset() == timedelta(0)
    assert closes_after(DAY, vn(20)).utcoffset() == timedelta(hours=7)


def test_a_batch_at_the_very_end_of_its_validity_does_not_wait():
    assert held_until(DAY, vn(22), vn(22)) is None  # expires now: nothing to wait for
    assert held_until(DAY, vn(22), vn(22, second=1)) == vn(22, second=1)


def test_sending_that_fills_the_hours_exactly_ends_at_the_close():
    assert sending_ends(DAY, vn(20), 3600) == vn(21)  # not tomorrow's opening
    # From 20:30:15.5, 29 min 44.5 s tonight; the other half hour from 07:00 tomorrow.
    assert sending_ends(DAY, vn(20, 30, second=15.5), 3600) == vn(7, 30, day=29, second=15.5)
    assert sending_ends(ALL_DAY, vn(0), 3600) == vn(1)


def test_no_estimate_beyond_the_days_asked():
    """``days`` is days of the calendar, not openings: a month at most by default."""
    month = 31 * 24 * 3600
    assert sending_ends(ALL_DAY, vn(0), month) == vn(0) + timedelta(days=31)
    assert sending_ends(ALL_DAY, vn(0), month + 1) is None
    # 40 days' worth of 14-hour openings ends in January: past the month, no estimate.
    assert sending_ends(DAY, vn(7), 40 * 14 * 3600) is None
    # From noon: 9 hours today, 30 full days, then the morning of the 31st day after.
    hours = 9 + 30 * 14
    assert sending_ends(DAY, vn(12), (hours + 5) * 3600) == vn(12) + timedelta(days=31)
    assert sending_ends(DAY, vn(12), (hours + 8) * 3600) is None  # 15:00: past the month
    # Asked for 45 days: the 40th opening is 39 days after the first, closing at 21:00.
    assert sending_ends(DAY, vn(7), 40 * 14 * 3600, days=45) == vn(21) + timedelta(days=39)
