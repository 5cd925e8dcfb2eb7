"""Tourist arrivals: which arrival events earn a welcome, in which language, and when.

A carrier sees a phone attach to the province's cells and reports an **arrival**: event
id, number, time, area (cell area or district code), and perhaps the roaming country, the
visitor's language and the carrier's home-area flag. The rules file is a campaign file
(texts per language, brandname, provider, validity, sending hours) with an ``[arrivals]``
table::

    [arrivals]
    areas = { "NT-PR" = "Phan Rang–Tháp Chàm", "NT-NH" = "Ninh Hải" }  # the province's
    once_per_days = 30          # one welcome per visitor per 30 days
    home_flag = true            # the carrier's home-area flag marks residents
    future_tolerance = "10m"    # an arrival stamped further ahead is refused
    past_tolerance = "7d"       # and one stamped further back (a feed replayed late)
    languages = { SG = "zh" }   # by the number's country, over the defaults below

Residents get no welcome: the carrier's flag says so (``home_flag``), or the number is on
the ledger's ``residents`` list (``loa suppress import residents FILE``). Deciding "already
welcomed" needs the ledger (every machine shares it); the rest is decided here.

The welcome goes out at the arrival, or at the sending window's next opening: an arrival
at 23:40 is welcomed at 07:00, unless its validity (from the arrival) ends first; then it
is skipped with that reason. Welcomes of a month are messages of that month's arrivals
campaign (``<id>-YYYY-MM``, Vietnam's calendar), so status, reports and the audit log
cover them like any list campaign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaigns.hours import VIETNAM
from campaigns.phones import Phone, PhoneRejected, normalise
from campaigns.spec import CampaignSpec, SpecError, parse_duration, read_toml, validated

#: The language of a number's country (ISO 3166), unless the event or the rules say.
LANGUAGE_BY_COUNTRY = {
    "VN": "vi", "KR": "ko", "KP": "ko", "CN": "zh", "TW": "zh", "HK": "zh", "MO": "zh",
    "RU": "ru", "BY": "ru", "KZ": "ru", "KG": "ru", "UZ": "ru", "US": "en", "CA": "en",
    "GB": "en", "AU": "en", "NZ": "en", "IE": "en", "SG": "en", "IN": "en", "PH": "en",
    "JP": "ja", "TH": "th", "LA": "lo", "KH": "km", "FR": "fr", "DE": "de",
}  # fmt: skip
#: When a visitor's language has no text: English, then Vietnamese.
FALLBACK_LANGUAGES = ("en", "vi")


class Rejected(StrEnum):
    """Why an event cannot be used at all (bad data: it goes to the rejects)."""

    NO_EVENT_ID = "no_event_id"
    BAD_NUMBER = "bad_number"
    BAD_TIME = "bad_time"
    FUTURE_TIME = "future_time"
    OLD_TIME = "old_time"
    UNKNOWN_AREA = "unknown_area"
    BAD_LANGUAGE = "bad_language"
    UNREADABLE = "unreadable_row"  # a row its file's format cannot read


class Skipped(StrEnum):
    """Why a good event earns no welcome (counted, not an error)."""

    RESIDENT = "resident"
    ALREADY_WELCOMED = "already_welcomed"
    VALIDITY_PASSED = "validity_passed"
    REPEATED_EVENT = "repeated_event"  # the same event id came before


class ArrivalRejected(ValueError):
    def __init__(self, reason: Rejected, field: str, detail: str = "") -> None:
        super().__init__(f"{field}: {reason.value}" + (f" ({detail})" if detail else ""))
        self.reason, self.field = reason, field


class ArrivalRules(BaseModel):
    """The ``[arrivals]`` table of a rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    areas: Annotated[dict[str, str], Field(min_length=1)]
    once_per_days: Annotated[int, Field(ge=1, le=365)] = 30
    home_flag: bool = True
    future_tolerance: Annotated[timedelta, Field(ge=timedelta(0), le=timedelta(days=1))] = (
        timedelta(minutes=10)
    )
    #: Arrivals further back are refused as rows, not skipped: a time of 1970 or 0001 is
    #: a broken clock or a hostile feed, and taking it would open a campaign for its month.
    #: A week lets a feed that was down be replayed (its event ids make it welcome nobody
    #: twice); anything older than the welcome's validity is skipped anyway.
    past_tolerance: Annotated[timedelta, Field(ge=timedelta(hours=1), le=timedelta(days=90))] = (
        timedelta(days=7)
    )
    languages: dict[str, str] = Field(default_factory=dict)

    @field_validator("future_tolerance", "past_tolerance", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)  # the campaign file's own notation

    @field_validator("languages")
    @classmethod
    def _countries(cls, value: dict[str, str]) -> dict[str, str]:
        for country, language in value.items():
            if not (len(country) == 2 and country.isupper() and language.isalpha()):
                raise ValueError(
                    f'{country} = {language!r}: write COUNTRY = "language", e.g. SG = "zh"'
                )
        return value

    @property
    def once_per(self) -> timedelta:
        return timedelta(days=self.once_per_days)


@dataclass(frozen=True, slots=True)
class Arrival:
    event_id: str
    phone: Phone
    arrived_at: datetime
    area: str
    roaming_country: str | None = None
    language: str | None = None
    home: bool | None = None


@dataclass(frozen=True, slots=True)
class Welcome:
    """A welcome to send: when, in which language, until when it is worth sending."""

    send_at: datetime
    language: str
    valid_until: datetime


@dataclass(frozen=True)
class ArrivalsConfig:
    spec: CampaignSpec  # the welcome's texts, brandname, provider, validity, hours
    rules: ArrivalRules

    def campaign_id(self, arrived_at: datetime) -> str:
        """The arrivals campaign of the arrival's month (Vietnam's calendar)."""
        return f"{self.spec.id}-{arrived_at.astimezone(VIETNAM):%Y-%m}"

    def campaign_of_reject(self, record: Mapping[str, Any], now: datetime) -> str:
        """The campaign a rejected event is counted in: its arrival's month when its
        ``arrived_at`` can be read and lies within the tolerances (a bad number in last
        month's feed belongs to last month's figures, not to a campaign of this month
        holding nothing else), otherwise the month it was received in."""
        try:
            arrived_at = parse_time(record.get("arrived_at"))
        except ArrivalRejected:
            return self.campaign_id(now)
        rules = self.rules
        if now - rules.past_tolerance <= arrived_at <= now + rules.future_tolerance:
            return self.campaign_id(arrived_at)
        return self.campaign_id(now)

    def language(self, arrival: Arrival) -> str:
        """The event's language if there is a text for it, else the number's country's
        (or the roaming country's), else English, then Vietnamese, then the default."""
        texts = self.spec.messages
        country = arrival.phone.country
        wanted = [
            arrival.language,
            self.rules.languages.get(country) or LANGUAGE_BY_COUNTRY.get(country),
            LANGUAGE_BY_COUNTRY.get(arrival.roaming_country or ""),
            *FALLBACK_LANGUAGES,
        ]
        return next((lang for lang in wanted if lang and lang in texts), self.spec.default_language)

    def decide(self, arrival: Arrival, resident: bool, now: datetime) -> Welcome | Skipped:
        """A welcome, or why none (``resident``: on the ledger's residents list). Whether
        the visitor was welcomed lately is the ledger's to decide, after this."""
        if resident or (self.rules.home_flag and arrival.home):
            return Skipped.RESIDENT
        valid_until = arrival.arrived_at + self.spec.validity
        send_at = max(arrival.arrived_at, now)
        window = self.spec.window
        if window is not None:
            send_at = window.next_opening(send_at)
        if send_at >= valid_until:
            return Skipped.VALIDITY_PASSED
        return Welcome(send_at, self.language(arrival), valid_until)

    def parse(self, record: Mapping[str, Any], now: datetime) -> Arrival:
        """An event as a file row or a JSON object gives it (``event_id``, ``phone``,
        ``arrived_at``, ``area``, optional ``roaming_country``, ``language``, ``home``).

        Raises:
            ArrivalRejected: naming the field and the reason.
        """
        event_id = _text(record.get("event_id"))
        if not event_id or len(event_id) > 64:
            raise ArrivalRejected(Rejected.NO_EVENT_ID, "event_id", "1 to 64 characters")
        if not _storable(event_id):  # it is kept: a NUL once failed a whole batch's commit
            raise ArrivalRejected(Rejected.NO_EVENT_ID, "event_id", "a control character")
        try:
            phone = normalise(_text(record.get("phone")) or None)
        except PhoneRejected as exc:
            raise ArrivalRejected(Rejected.BAD_NUMBER, "phone", str(exc)) from None
        arrived_at = parse_time(record.get("arrived_at"))
        if arrived_at > now + self.rules.future_tolerance:
            raise ArrivalRejected(Rejected.FUTURE_TIME, "arrived_at", arrived_at.isoformat())
        if arrived_at < now - self.rules.past_tolerance:
            raise ArrivalRejected(Rejected.OLD_TIME, "arrived_at", arrived_at.isoformat())
        area = _text(record.get("area"))
        if area not in self.rules.areas:
            raise ArrivalRejected(Rejected.UNKNOWN_AREA, "area", repr(area))
        language = _text(record.get("language")) or None
        if language is not None and not (language.isalpha() and 2 <= len(language) <= 3):
            raise ArrivalRejected(Rejected.BAD_LANGUAGE, "language", repr(language))
        roaming = (_text(record.get("roaming_country")) or "").upper() or None
        return Arrival(
            event_id,
            phone,
            arrived_at,
            area,
            roaming,
            language and language.lower(),
            _flag(record.get("home")),
        )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _storable(text: str) -> bool:
    """Printable, and valid UTF-8 (JSON can carry a lone surrogate, ``"\ud800"``, which no
    database column takes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def _flag(value: Any) -> bool | None:
    text = _text(value).lower()
    if text in ("", "none", "null"):
        return None
    return text in ("1", "true", "yes", "y", "t")


def parse_time(value: Any) -> datetime:
    """ISO 8601 with an offset, or without one meaning Vietnam's time; or Unix seconds.
    Returned in UTC, so that every later sum (validity, the month in Vietnam) stays
    within ``datetime``'s range.

    Raises:
        ArrivalRejected: anything else, and a time that has no UTC equivalent
            (``0001-01-01T00:00:00+14:00`` is in year 0 in UTC).
    """
    text = _text(value)[:64]
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=VIETNAM) if moment.tzinfo is None else moment
        return moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise ArrivalRejected(Rejected.BAD_TIME, "arrived_at", repr(text)) from None


def load_arrivals(path: Path) -> ArrivalsConfig:
    """Read a rules file: a campaign file with an ``[arrivals]`` table.

    Raises:
        SpecError: naming the file and the field.
    """
    data = read_toml(path, "arrivals rules file")
    table = data.pop("arrivals", None)
    if not isinstance(table, dict):
        raise SpecError(
            f"{path}: arrivals: the [arrivals] table is missing (areas, once_per_days …)"
        )
    return ArrivalsConfig(
        validated(CampaignSpec, data, path), validated(ArrivalRules, table, path, "arrivals.")
    )
