"""A campaign's messages counted in one pass: per provider, channel and status, how many,
their parts, the latest send, and those handed over lately.

``loa campaign status`` and ``GET /v1/campaigns/ID`` used to read the campaign five times
(statuses, parts billed, per provider, what is left, the last send) and its worker events
once more (the rate): six passes growing with the campaign, 95 ms for 100,000 messages
(``benchmarks/api.py``). One ``GROUP BY`` gives all of it; the rate counts messages
handed over within the window (``tried``: sent, or ended without a send), where it
counted their events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.status import Status
from ledger.schema import key_of, messages, now

#: Statuses of a message a provider took, or refused: what a send rate counts.
HANDED = frozenset(
    {Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.UNKNOWN,
     Status.UNREACHABLE}
)  # fmt: skip
#: Statuses of the parts a provider bills (``ledger.summary.BILLED``).
BILLED = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNKNOWN})
#: The window a rate is measured over.
RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class Group:
    """The campaign's messages of one provider, channel and status."""

    provider: str
    channel: int
    status: Status
    messages: int
    parts: int
    last_sent: datetime | None
    #: Handed over since the window began, and the first of them ever (``None``: none).
    recent: int
    first_tried: datetime | None


@dataclass(frozen=True)
class Tally:
    """Every group of one campaign's messages, read at ``at``."""

    groups: tuple[Group, ...]
    at: datetime
    window: timedelta = RATE_WINDOW

    def statuses(self) -> dict[Status, int]:
        """Messages per status, every status present (zeros included)."""
        counts = dict.fromkeys(Status, 0)
        for group in self.groups:
            counts[group.status] += group.messages
        return counts

    def by_provider(self) -> dict[str, dict[str, int]]:
        """Messages per status for each provider (statuses it has none in left out)."""
        found: dict[str, dict[str, int]] = {}
        for group in self.groups:
            mine = found.setdefault(group.provider, {})
            mine[group.status.value] = mine.get(group.status.value, 0) + group.messages
        return found

    def parts_billed(self, channels: Iterable[int] = ()) -> int:
        """SMS parts a provider took (``BILLED``); ``channels``: only theirs (a campaign
        with several, its SMS channel)."""
        keep = set(channels)
        return sum(
            group.parts
            for group in self.groups
            if group.status in BILLED and (not keep or group.channel in keep)
        )

    def remaining(self) -> dict[str, tuple[int, int, int]]:
        """Per provider ``(queued, sending, parts of both)`` (``ledger.waiting.remaining``)."""
        found: dict[str, tuple[int, int, int]] = {}
        for group in self.groups:
            if group.status not in (Status.QUEUED, Status.SENDING):
                continue
            queued, sending, parts = found.get(group.provider, (0, 0, 0))
            if group.status is Status.QUEUED:
                queued += group.messages
            else:
                sending += group.messages
            found[group.provider] = (queued, sending, parts + group.parts)
        return found

    def last_sent(self) -> dict[str, datetime]:
        """Per provider, the latest send of a message still ``sent`` (awaiting its receipt)."""
        found: dict[str, datetime] = {}
        for group in self.groups:
            if group.status is Status.SENT and group.last_sent is not None:
                latest = found.get(group.provider)
                found[group.provider] = max(latest, group.last_sent) if latest else group.last_sent
        return found

    def rate(self) -> tuple[float, float]:
        """``(messages handed over a second, seconds counted over)``: over the window, or
        for a campaign that began more recently, since its first (at least a second)."""
        handed = [group for group in self.groups if group.status in HANDED]
        counted = sum(group.recent for group in handed)
        firsts = [group.first_tried for group in handed if group.first_tried is not None]
        seconds = self.window.total_seconds()
        since = self.at - self.window
        if firsts and min(firsts) > since:
            seconds = max(1.0, (self.at - min(firsts)).total_seconds())
        return counted / seconds, seconds


def tally(engine: Engine, campaign_id: str, window: timedelta = RATE_WINDOW) -> Tally:
    """Count ``campaign_id``'s messages in one pass (see the module)."""
    at = now()
    tried = sa.func.coalesce(messages.c.sent_at, messages.c.final_at)
    query = (
        sa.select(
            messages.c.provider,
            messages.c.channel,
            messages.c.status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(messages.c.parts), 0),
            sa.func.max(messages.c.sent_at),
            sa.func.coalesce(sa.func.sum(sa.case((tried >= at - window, 1), else_=0)), 0),
            sa.func.min(tried),
        )
        .where(messages.c.campaign_key == key_of(campaign_id))
        .group_by(messages.c.provider, messages.c.channel, messages.c.status)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    groups = tuple(
        Group(
            provider,
            int(channel or 0),
            Status(status),
            int(count),
            int(parts),
            _aware(last),
            int(recent),
            _aware(first),
        )
        for provider, channel, status, count, parts, last, recent, first in rows
    )
    return Tally(groups, at, window)


def _aware(moment: datetime | str | None) -> datetime | None:
    """A time from an aggregate: SQLite gives text without its zone (UTC, as stored)."""
    from datetime import UTC

    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
