"""Sending hours: when a campaign may text people, in Vietnam's local time.

Decree 91/2020 allows advertising SMS only between 07:00 and 22:00 (Asia/Ho_Chi_Minh,
UTC+7, no daylight saving). Public-service campaigns may send at any hour unless their
file sets ``sending_hours``. A batch that comes up outside its window is delayed to the
window's next opening, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_WINDOW = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class SendingWindow:
    """Daily hours ``[start, end)`` in Vietnam's local time; ``end`` before ``start``
    means the window runs past midnight (``20:00-02:00``)."""

    start: time
    end: time  # time(0) written as 24:00 means the end of the day

    @classmethod
    def parse(cls, text: str) -> SendingWindow:
        """``"07:00-22:00"`` -> a window. Raises ``ValueError`` for anything else."""
        match = _WINDOW.match(text)
        if not match:
            raise ValueError("write sending hours as HH:MM-HH:MM, e.g. 07:00-22:00")
        start = time(int(match[1]), int(match[2]))
        end = time(0) if match[3] == "24" else time(int(match[3]), int(match[4]))
        if start == end and match[3] != "24":
            raise ValueError("the window is empty: start and end are the same")
        return cls(start, end)

    def __str__(self) -> str:
        end = "24:00" if self.end == time(0) else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"

    def _open_at(self, local: time) -> bool:
        if self.end == time(0):
            return local >= self.start
        # start == end only as 00:00-24:00 (parse refuses the rest), answered above: "<="
        # would say the same.
        if self.start < self.end:  # pragma: no mutate
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls inside the window."""
        return self._open_at(moment.astimezone(VIETNAM).time())

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` itself when the window is open, else the next start (aware, in UTC
        terms of the same instant type as ``moment``)."""
        if self.is_open(moment):
            return moment
        local = moment.astimezone(VIETNAM)
        opening = local.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        # The start is inside the window, so a closed moment is never the opening itself:
        # "<" would say the same.
        if opening <= local:  # pragma: no mutate
            opening += timedelta(days=1)
        return opening.astimezone(moment.tzinfo)

    def contains(self, other: SendingWindow) -> bool:
        """Whether every minute of ``other`` is inside this window."""
        # Any run of at least a day's minutes covers every local time of day (Vietnam has
        # no daylight saving): the probe's date, zone and direction change nothing.
        probe = datetime(2020, 8, 1, tzinfo=VIETNAM)  # pragma: no mutate
        minutes = (probe + timedelta(minutes=m) for m in range(24 * 60))  # pragma: no mutate
        return all(self.is_open(m) for m in minutes if other.is_open(m))


#: The only hours advertising may use (Decree 91/2020/ND-CP).
ADVERTISING_HOURS = SendingWindow(time(7), time(22))


def closes_after(window: SendingWindow, moment: datetime) -> datetime:
    """The end of the window's opening that holds ``moment`` (aware; ``moment`` must be
    inside the window), in ``moment``'s zone."""
    local = moment.astimezone(VIETNAM)
    end = local.replace(hour=window.end.hour, minute=window.end.minute, second=0, microsecond=0)
    if end <= local:  # ends tomorrow: 24:00, or a window past midnight opened today
        end += timedelta(days=1)
    return end.astimezone(moment.tzinfo)


def held_until(
    window: SendingWindow | None, moment: datetime, valid_until: datetime
) -> datetime | None:
    """Until when a batch coming up at ``moment`` must wait for its sending hours: the
    window's next opening, or the end of the validity when that comes first (the rows
    then expire instead of going out). ``None`` when it may go now: no window, the window
    open, or the validity already over (nothing to wait for). The worker decides with it
    (``worker.sending.dispatch``) and ``loa campaign status`` explains with it, so the two agree.
    """
    if window is None or window.is_open(moment) or moment >= valid_until:
        return None
    return min(window.next_opening(moment), valid_until)


def sending_ends(
    window: SendingWindow | None, start: datetime, seconds: float, days: int = 31
) -> datetime | None:
    """When ``seconds`` of sending that may begin at ``start`` are done, sending only
    inside ``window`` (every hour without one). ``None`` when that would take more than
    ``days`` days (no sensible estimate)."""
    if window is None:
        return start + timedelta(seconds=seconds)
    give_up = start + timedelta(days=days)
    moment, left = start, seconds
    while True:
        moment = window.next_opening(moment)
        closes = closes_after(window, moment)
        span = (closes - moment).total_seconds()
        if left <= span:
            done = moment + timedelta(seconds=left)
            return done if done <= give_up else None
        # A stop only: with ">" one more opening comes, and ends past ``give_up`` too.
        if closes >= give_up:  # pragma: no mutate
            return None
        left -= span
        moment = closes
