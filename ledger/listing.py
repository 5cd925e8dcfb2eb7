"""The campaigns in the ledger, newest first, each with where it stands (``loa campaign
list``).

A line per campaign: its id, name, the state ``loa campaign status`` shows
(``ledger.summary.progress_state``: scheduled, running, paused, halted, cancelled,
completed), when it was created (and when it starts, launched with ``--at``), its
recipients, how many the carriers reported delivered, and that share.

Counting is SQL ``GROUP BY`` over the campaigns of one page at a time (the messages'
index on ``campaign_key`` leads), never a loop over recipients. A state that is derived
from the counts (completed, halted, running: all stored as ``running``) is filtered after
counting, so pages are read until ``limit`` campaigns matched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import FINAL, Status
from ledger.halts import all_halts
from ledger.schema import campaigns, messages
from ledger.summary import progress_state, providers_with_queued, reached_once

#: Every state a campaign can be shown in, and the state stored for it.
STATES: dict[str, str] = {
    "scheduled": "scheduled",
    "running": "running",
    "halted": "running",
    "completed": "running",
    "paused": "paused",
    "cancelled": "cancelled",
}
#: Campaigns counted per query.
PAGE = 200


@dataclass(frozen=True)
class CampaignLine:
    """One campaign as the list shows it. Times are UTC-aware; ``statuses`` holds the
    recipients per status (statuses with none left out)."""

    id: str
    name: str
    category: str
    provider: str
    state: str
    state_reason: str | None
    created_at: datetime
    start_at: datetime | None
    statuses: dict[str, int]
    #: Its channels (Zalo, then SMS …): a message per recipient per channel.
    channels: int = 1
    #: With several channels, the recipients some channel delivered to (a double once).
    reached: int | None = None

    @property
    def recipients(self) -> int:
        """Recipients of the campaign, whatever their status (its messages, one per
        recipient per channel, divided by its channels)."""
        return sum(self.statuses.values()) // self.channels

    @property
    def delivered(self) -> int:
        """Recipients the carriers (or Zalo) reported as delivered (reached; with several
        channels, by any of them, once)."""
        if self.reached is not None:
            return self.reached
        return self.statuses.get(Status.DELIVERED.value, 0)

    @property
    def final(self) -> int:
        """Messages in a final status (``campaigns.status.FINAL``): a recipient's, or with
        several channels, one of each recipient's."""
        return sum(n for status, n in self.statuses.items() if status in FINAL)

    @property
    def share(self) -> float | None:
        """Delivered among recipients, 0 to 1; ``None`` for a campaign without any."""
        return self.delivered / self.recipients if self.recipients else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; times as ISO 8601 in UTC, ``share`` rounded to 4 decimals."""
        return {
            "campaign": self.id,
            "name": self.name,
            "category": self.category,
            "provider": self.provider,
            "state": self.state,
            "state_reason": self.state_reason,
            "created_at": self.created_at.isoformat(),
            "start_at": self.start_at.isoformat() if self.start_at else None,
            "recipients": self.recipients,
            "delivered": self.delivered,
            "final": self.final,
            "share": None if self.share is None else round(self.share, 4),
            "statuses": self.statuses,
            "channels": self.channels,
        }


def list_campaigns(
    engine: Engine,
    states: Collection[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> tuple[list[CampaignLine], bool]:
    """The campaigns created in ``[since, until)`` (aware times; ``None``: no bound) whose
    shown state is one of ``states`` (empty: any), newest first, at most ``limit``
    (``None``: all).

    Returns:
        The lines, and whether more campaigns matched beyond ``limit``.

    Raises:
        ValueError: a state not in ``STATES``.
    """
    unknown = sorted(set(states) - STATES.keys())
    if unknown:
        raise ValueError(f"unknown state {unknown[0]!r} (known: {', '.join(STATES)})")
    wanted = set(states)
    query = sa.select(
        campaigns.c.key,
        campaigns.c.id,
        campaigns.c.name,
        campaigns.c.category,
        campaigns.c.provider,
        campaigns.c.state,
        campaigns.c.state_reason,
        campaigns.c.created_at,
        campaigns.c.start_at,
    ).order_by(campaigns.c.created_at.desc(), campaigns.c.key.desc())
    if wanted:
        query = query.where(campaigns.c.state.in_({STATES[s] for s in wanted}))
    if since is not None:
        query = query.where(campaigns.c.created_at >= since)
    if until is not None:
        query = query.where(campaigns.c.created_at < until)
    found: list[CampaignLine] = []
    halts = all_halts(engine)
    with engine.connect() as conn:
        for line in _lines(conn, query, halts):
            if wanted and line.state not in wanted:
                continue
            if limit is not None and len(found) == limit:
                return found, True
            found.append(line)
    return found, False


def _lines(
    conn: Connection, query: sa.Select[Any], halts: dict[str, str]
) -> Iterator[CampaignLine]:
    """Each campaign of ``query`` with its counts and shown state, a page at a time."""
    after: sa.ColumnElement[bool] = sa.true()
    while True:
        page = conn.execute(query.where(after).limit(PAGE)).all()
        if not page:
            return
        # The next page starts after the last line of this one (not at an offset: a
        # campaign launched meanwhile would shift every line down by one).
        last = page[-1]
        after = sa.or_(
            campaigns.c.created_at < last.created_at,
            sa.and_(campaigns.c.created_at == last.created_at, campaigns.c.key < last.key),
        )
        keys = [row.key for row in page]
        counts: dict[int, dict[str, int]] = {key: {} for key in keys}
        channels: dict[int, int] = dict.fromkeys(keys, 1)
        for key, status, count, last in conn.execute(
            sa.select(
                messages.c.campaign_key,
                messages.c.status,
                sa.func.count(),
                sa.func.max(messages.c.channel),
            )
            .where(messages.c.campaign_key.in_(keys))
            .group_by(messages.c.campaign_key, messages.c.status)
        ):
            counts[key][status] = count
            channels[key] = max(channels[key], int(last or 0) + 1)
        reached = reached_once(conn, channels)
        queued = [key for key in keys if counts[key].get(Status.QUEUED.value)]
        waiting = providers_with_queued(conn, queued) if halts else {}
        for row in page:
            statuses = counts[row.key]
            done = sum(n for s, n in statuses.items() if s in FINAL) == sum(statuses.values())
            providers = waiting.get(row.key, frozenset())
            yield CampaignLine(
                id=row.id,
                name=row.name,
                category=row.category,
                provider=row.provider,
                state=progress_state(row.state, done, halts, providers),
                state_reason=_reason(row.state, row.state_reason, halts, providers),
                created_at=row.created_at,
                start_at=row.start_at,
                statuses=dict(sorted(statuses.items())),
                channels=channels[row.key],
                reached=reached.get(row.key),
            )
        if len(page) < PAGE:
            return


def _reason(
    stored: str, reason: str | None, halts: dict[str, str], waiting: frozenset[str]
) -> str | None:
    """Why the campaign is in its state, as ``loa campaign status`` says it."""
    blocking = {name: why for name, why in halts.items() if name in waiting}
    if stored == "running" and blocking:
        return "; ".join(f"provider {name} halted: {why}" for name, why in sorted(blocking.items()))
    return reason
