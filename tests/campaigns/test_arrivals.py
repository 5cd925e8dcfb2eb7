"""Arrival rules without services: which events earn a welcome, in which language, when."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from campaigns.arrivals import (
    ArrivalRejected,
    Rejected,
    Skipped,
    Welcome,
    load_arrivals,
    parse_time,
)
from campaigns.hours import VIETNAM
from campaigns.spec import SpecError

RULES = Path(__file__).resolve().parents[2] / "examples" / "arrivals.toml"
CONFIG = load_arrivals(RULES)
NOW = datetime(2026, 11, 28, 14, 0, tzinfo=VIETNAM)


def event(**fields: object) -> dict[str, object]:
    base = {"event_id": "e1", "phone": "+821012345678", "arrived_at": "2026-11-28T13:55:00+07:00"}
    return {**base, "area": "586", **fields}


def decide(record: dict[str, object], now: datetime = NOW, resident: bool = False):
    return CONFIG.decide(CONFIG.parse(record, now), resident, now)


@pytest.mark.parametrize(
    ("fields", "language"),
    [
        ({"phone": "+821012345678"}, "ko"),  # Korean number
        ({"phone": "+8613812345678"}, "zh"),
        ({"phone": "+79161234567"}, "ru"),
        ({"phone": "+14155552671"}, "en"),
        ({"phone": "+447911123456"}, "en"),
        ({"phone": "+61412345678"}, "en"),
        ({"phone": "+6591234567"}, "zh"),  # the rules file: SG = "zh"
        ({"phone": "0912345678"}, "vi"),  # a domestic visitor
        ({"phone": "+33612345678"}, "en"),  # French: no French text, English first
        ({"phone": "+33612345678", "language": "ru"}, "ru"),  # the event names one
        ({"phone": "+821012345678", "language": "fr"}, "ko"),  # named, but no text for it
        ({"phone": "+33612345678", "roaming_country": "kr"}, "ko"),
    ],
)
def test_the_language_follows_the_event_then_the_number(fields, language):
    welcome = decide(event(**fields))
    assert isinstance(welcome, Welcome) and welcome.language == language


def test_an_arrival_in_the_day_is_welcomed_at_once():
    welcome = decide(event())
    assert welcome == Welcome(NOW, "ko", datetime(2026, 11, 29, 1, 55, tzinfo=VIETNAM))


def test_a_night_arrival_is_welcomed_at_seven_unless_its_validity_ran_out():
    night = "2026-11-28T23:40:00+07:00"
    at_midnight = datetime(2026, 11, 28, 23, 45, tzinfo=VIETNAM)
    welcome = decide(event(arrived_at=night), now=at_midnight)
    assert welcome.send_at == datetime(2026, 11, 29, 7, 0, tzinfo=VIETNAM)
    # Arrived at 18:00, reported at 07:30 next morning: 12 h of validity are over.
    late = decide(
        event(arrived_at="2026-11-28T18:00:00+07:00"),
        now=datetime(2026, 11, 29, 7, 30, tzinfo=VIETNAM),
    )
    assert late is Skipped.VALIDITY_PASSED
    # Arrived at 20:30, reported at 21:50: still inside the hours, sent now.
    evening = datetime(2026, 11, 28, 21, 50, tzinfo=VIETNAM)
    assert decide(event(arrived_at="2026-11-28T20:30:00+07:00"), now=evening).send_at == evening


def test_residents_get_no_welcome():
    assert decide(event(home="1")) is Skipped.RESIDENT
    assert decide(event(home="0")).language == "ko"
    assert decide(event(), resident=True) is Skipped.RESIDENT


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"event_id": ""}, Rejected.NO_EVENT_ID, "event_id"),
        ({"phone": "chưa có"}, Rejected.BAD_NUMBER, "phone"),
        ({"phone": "0912"}, Rejected.BAD_NUMBER, "phone"),
        ({"arrived_at": "hôm qua"}, Rejected.BAD_TIME, "arrived_at"),
        ({"arrived_at": "2026-11-29T14:00:00+07:00"}, Rejected.FUTURE_TIME, "arrived_at"),
        ({"area": "999"}, Rejected.UNKNOWN_AREA, "area"),
        ({"language": "tiếng Việt"}, Rejected.BAD_LANGUAGE, "language"),
    ],
)
def test_bad_events_are_refused_with_the_field_and_reason(fields, reason, field):
    with pytest.raises(ArrivalRejected) as caught:
        CONFIG.parse(event(**fields), NOW)
    assert (caught.value.reason, caught.value.field) == (reason, field)


def test_times_with_an_offset_without_one_or_as_unix_seconds():
    assert parse_time("2026-11-28T06:55:00Z") == datetime(2026, 11, 28, 13, 55, tzinfo=VIETNAM)
    assert parse_time("2026-11-28 13:55:00") == datetime(2026, 11, 28, 13, 55, tzinfo=VIETNAM)
    moment = datetime(2026, 11, 28, 13, 55, tzinfo=VIETNAM)
    assert parse_time(str(int(moment.timestamp()))) == moment
    # A little ahead of the clock (the carrier's clock is not ours) is accepted.
    ahead = NOW + timedelta(minutes=5)
    assert CONFIG.parse(event(arrived_at=ahead.isoformat()), NOW).arrived_at == ahead


def test_the_month_names_the_arrivals_campaign():
    assert (
        CONFIG.campaign_id(datetime(2026, 11, 30, 23, 30, tzinfo=VIETNAM))
        == "arrivals-ninh-thuan-2026-11"
    )
    # 17:30 UTC on the 30th is already the 1st of December in Vietnam.
    assert (
        CONFIG.campaign_id(datetime.fromisoformat("2026-11-30T17:30:00+00:00"))
        == "arrivals-ninh-thuan-2026-12"
    )


def test_a_rules_file_without_its_table_or_with_a_bad_field_is_named(tmp_path):
    text = RULES.read_text(encoding="utf-8")
    missing = tmp_path / "missing.toml"
    missing.write_text(text[: text.index("[arrivals]")], encoding="utf-8")
    with pytest.raises(
        SpecError, match=r"missing\.toml: arrivals: the \[arrivals\] table is missing"
    ):
        load_arrivals(missing)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("once_per_days = 30", "once_per_days = 0"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad\.toml: arrivals\.once_per_days"):
        load_arrivals(bad)
