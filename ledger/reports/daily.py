"""The daily update the Department of Information and Communications sends the provincial
leadership: every campaign active on one day in Vietnam (a list campaign, the long-running
arrivals campaign: any campaign with an event that day, and any launched that day even if
nothing of it moved yet), what happened to its messages
that day, and where all of its recipients stand now.

"That day" is read from the event log (each status change is an event with its time), so
a campaign launched last week and still delivering today is in today's update with
today's moves only; aggregated in SQL like ``ledger.reports.campaign``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.hours import VIETNAM
from campaigns.status import FINAL, Status
from ledger.reports.campaign import hour_in_vietnam
from ledger.schema import campaigns, events, messages, provider_halts
from ledger.summary import progress_state, providers_with_queued, reached_once

#: The moves a daily update counts (claims and releases in between are the worker's own).
REPORTED = ("sent", "delivered", "undelivered", "failed", "expired", "unknown", "cancelled")


@dataclass
class DailyCampaign:
    id: str
    name: str
    state: str  # as ``loa campaign status`` shows it now: completed, running, cancelled …
    moves: dict[str, int]  # messages that reached each status that day
    standing: dict[str, int]  # every message's status now (a recipient's, per channel)
    #: Its channels (a message per recipient per channel), and with several the
    #: recipients any of them delivered to, once each.
    channels: int = 1
    reached: int | None = None

    def as_dict(self) -> dict[str, Any]:
        delivered = self.moves.get("delivered", 0)
        known = delivered + self.moves.get("undelivered", 0)
        reached = self.standing.get("delivered", 0) if self.reached is None else self.reached
        return {
            "campaign": self.id,
            "name": self.name,
            "state": self.state,
            "that_day": self.moves,
            "recipients": sum(self.standing.values()) // self.channels,
            "reached": reached,
            "standing": self.standing,
            "delivery_rate_that_day": round(delivered / known, 4) if known else None,
        }


@dataclass
class Daily:
    day: date
    campaigns: list[DailyCampaign] = field(default_factory=list)
    by_hour: dict[int, dict[str, int]] = field(default_factory=dict)  # moves per hour

    def totals(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for campaign in self.campaigns:
            for status, count in campaign.moves.items():
                total[status] = total.get(status, 0) + count
        return dict(sorted(total.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "campaigns": [c.as_dict() for c in self.campaigns],
            "that_day": self.totals(),
            "by_hour": {str(h): v for h, v in sorted(self.by_hour.items())},
        }


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day's start and end in Vietnam, as UTC times."""
    start = datetime.combine(day, time(), VIETNAM).astimezone(UTC)
    return start, start + timedelta(days=1)


def build_daily(engine: Engine, day: date) -> Daily:
    """Every campaign with an event on ``day`` (Vietnam) or launched that day, its moves
    that day and its standing now; and the day's moves hour by hour, across campaigns."""
    start, end = day_bounds(day)
    that_day = sa.and_(events.c.at >= start, events.c.at < end, events.c.to_status.in_(REPORTED))
    daily = Daily(day)
    with engine.connect() as conn:
        moves: dict[str, dict[str, int]] = {}
        for campaign_id, status, count in conn.execute(
            sa.select(events.c.campaign_id, events.c.to_status, sa.func.count())
            .where(that_day)
            .group_by(events.c.campaign_id, events.c.to_status)
        ):
            moves.setdefault(campaign_id, {})[status] = count
        # Launched that day but nothing moved yet (waiting for its hours, halted, paused,
        # scheduled): active all the same, and the day's update must name it.
        for (campaign_id,) in conn.execute(
            sa.select(campaigns.c.id).where(
                campaigns.c.created_at >= start, campaigns.c.created_at < end
            )
        ):
            moves.setdefault(campaign_id, {})
        if not moves:
            return daily
        rows = conn.execute(
            sa.select(campaigns.c.key, campaigns.c.id, campaigns.c.name, campaigns.c.state)
            .where(campaigns.c.id.in_(moves))
            .order_by(campaigns.c.created_at, campaigns.c.id)
        ).all()
        standing: dict[int, dict[str, int]] = {}
        channels: dict[int, int] = {}
        for key, status, count, last in conn.execute(
            sa.select(
                messages.c.campaign_key,
                messages.c.status,
                sa.func.count(),
                sa.func.max(messages.c.channel),
            )
            .where(messages.c.campaign_key.in_([row.key for row in rows]))
            .group_by(messages.c.campaign_key, messages.c.status)
        ):
            standing.setdefault(key, {})[status] = count
            channels[key] = max(channels.get(key, 1), int(last or 0) + 1)
        reached = reached_once(conn, channels)
        waiting = providers_with_queued(
            conn, [row.key for row in rows if standing.get(row.key, {}).get("queued")]
        )
        halts: dict[str, str] = {}
        if waiting:  # on this connection: SQLite opens one transaction at a time
            halts = dict(
                conn.execute(sa.select(provider_halts.c.provider, provider_halts.c.reason)).all()
            )
        daily.campaigns = [
            DailyCampaign(
                row.id,
                row.name,
                progress_state(
                    row.state,
                    all(Status(s) in FINAL for s in standing.get(row.key, {})),
                    halts,
                    waiting.get(row.key, frozenset()),
                ),
                dict(sorted(moves[row.id].items())),
                dict(sorted(standing.get(row.key, {}).items())),
                channels.get(row.key, 1),
                reached.get(row.key),
            )
            for row in rows
        ]
        hour = hour_in_vietnam(conn, events.c.at)
        for h, status, count in conn.execute(
            sa.select(hour, events.c.to_status, sa.func.count())
            .where(that_day, events.c.to_status.in_(["sent", "delivered"]))  # the chart's two
            .group_by(hour, events.c.to_status)
        ):
            daily.by_hour.setdefault(int(h), {})[status] = count
    return daily
