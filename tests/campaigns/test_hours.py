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
