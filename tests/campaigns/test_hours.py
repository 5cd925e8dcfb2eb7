from datetime import UTC, datetime, time

import pytest

from campaigns.hours import ADVERTISING_HOURS, VIETNAM, SendingWindow
from campaigns.spec import SpecError, load_spec
from tests.campaigns.test_spec import VALID, write


def vn(hour: int, minute: int = 0, day: int = 28) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=VIETNAM)


def test_the_advertising_window_in_vietnam_time():
    assert ADVERTISING_HOURS.is_open(vn(7)) and ADVERTISING_HOURS.is_open(vn(21, 59))
    assert not ADVERTISING_HOURS.is_open(vn(22)) and not ADVERTISING_HOURS.is_open(vn(6, 59))
    # 23:40 in Hà Nội is 16:40 UTC: the same instant, the same answer.
    assert not ADVERTISING_HOURS.is_open(vn(23, 40).astimezone(UTC))


def test_a_closed_window_opens_next_at_its_start():
    assert ADVERTISING_HOURS.next_opening(vn(23, 40)) == vn(7, day=29)
    assert ADVERTISING_HOURS.next_opening(vn(5)) == vn(7)
    assert ADVERTISING_HOURS.next_opening(vn(12)) == vn(12)


def test_overnight_windows():
    night = SendingWindow.parse("20:00-02:00")
    assert night.is_open(vn(23)) and night.is_open(vn(1, 59)) and not night.is_open(vn(2))
    assert SendingWindow.parse("00:00-24:00").is_open(vn(23, 59))
    assert str(SendingWindow.parse("07:00-24:00")) == "07:00-24:00"


@pytest.mark.parametrize("bad", ["7-22", "07:00-07:00", "25:00-26:00", "07:00"])
def test_bad_windows_are_refused(bad):
    with pytest.raises(ValueError):
        SendingWindow.parse(bad)


def test_window_containment():
    assert ADVERTISING_HOURS.contains(SendingWindow(time(8), time(20)))
    assert not ADVERTISING_HOURS.contains(SendingWindow(time(6), time(20)))


def test_advertising_cannot_widen_its_hours(tmp_path):
    advertising = VALID.replace(
        'category = "public_service"',
        'category = "advertising"\nopt_out_instruction = "TC"\nadd_ad_markers = true',
    )
    assert load_spec(write(tmp_path, advertising)).window == ADVERTISING_HOURS
    wider = advertising.replace("[messages]", 'sending_hours = "06:00-23:00"\n[messages]')
    with pytest.raises(SpecError, match="sending_hours"):
        load_spec(write(tmp_path, wider))
    narrower = advertising.replace("[messages]", 'sending_hours = "08:00-20:00"\n[messages]')
    assert str(load_spec(write(tmp_path, narrower)).window) == "08:00-20:00"
    assert load_spec(write(tmp_path, VALID)).window is None


def test_held_until_is_the_next_opening_or_the_end_of_validity():
    from campaigns.hours import held_until

    day = SendingWindow.parse("07:00-21:00")
    assert held_until(day, vn(12), vn(23)) is None  # open: goes now
    assert held_until(None, vn(23), vn(23, 30)) is None  # no hours: goes now
    assert held_until(day, vn(22), vn(12, day=29)) == vn(7, day=29)
    assert held_until(day, vn(22), vn(6, day=29)) == vn(6, day=29)  # expires first
    assert held_until(day, vn(22), vn(21, 30)) is None  # validity over: nothing to wait for


def test_sending_ends_counts_only_the_open_hours():
    from campaigns.hours import closes_after, sending_ends

    day = SendingWindow.parse("07:00-21:00")
    assert closes_after(day, vn(20)) == vn(21)
    assert closes_after(SendingWindow.parse("20:00-02:00"), vn(23)) == vn(2, day=29)
    assert closes_after(SendingWindow.parse("07:00-24:00"), vn(23)) == vn(0, day=29)
    # Two hours of sending from 20:00: one tonight, one from 07:00 tomorrow.
    assert sending_ends(day, vn(20), 7200) == vn(8, day=29)
    assert sending_ends(day, vn(5), 60) == vn(7, 1)  # starts at the opening
    assert sending_ends(None, vn(20), 7200) == vn(22)
    assert sending_ends(day, vn(20), 10**9) is None  # beyond a month: no estimate
