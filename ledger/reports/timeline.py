"""A campaign's timeline for its report (``ledger.reports.campaign``): sends (accepted by a
provider) and deliveries per step of time over the campaign's span, counted in SQL
(three aggregate queries whatever the number of messages), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaigns.status import Status
from ledger.schema import messages

#: A timeline's step (seconds): the shortest of these that gives at most
#: ``TIMELINE_POINTS`` points over the campaign's span.
TIMELINE_STEPS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
TIMELINE_POINTS = 120


@dataclass
class Timeline:
    """Sends (accepted by a provider) and deliveries per step of time, from ``start``."""

    start: datetime
    step: int  # seconds
    sent: list[int]
    delivered: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "step_seconds": self.step,
            "sent": self.sent,
            "delivered": self.delivered,
        }


def _epoch(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", column)
    return sa.cast(sa.func.strftime("%s", column), sa.Integer)


def _bucket(conn: Connection, column: Any, start: int, step: int) -> Any:
    """Which step of the timeline ``column`` falls in (whole steps since ``start``)."""
    offset = _epoch(conn, column) - start
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(offset / step), sa.Integer)
    return sa.cast(offset, sa.Integer) // step  # SQLite: integer division, offset >= 0


def _counts(
    conn: Connection, where: Any, column: Any, start: int, step: int, size: int
) -> list[int]:
    bucket = _bucket(conn, column, start, step)
    counts = [0] * size
    for index, count in conn.execute(
        sa.select(bucket, sa.func.count()).where(where, column.is_not(None)).group_by(bucket)
    ):
        counts[min(max(int(index), 0), size - 1)] += count
    return counts


def timeline(conn: Connection, where: Any, points: int = TIMELINE_POINTS) -> Timeline | None:
    """Sends and deliveries of the messages ``where`` selects, over their span in at most
    ``points`` steps (three aggregate queries whatever the number of messages). ``None``
    when nothing was sent."""
    first, last = conn.execute(
        sa.select(
            sa.func.min(messages.c.sent_at),
            sa.func.max(sa.func.coalesce(messages.c.final_at, messages.c.sent_at)),
        ).where(where, messages.c.sent_at.is_not(None))
    ).one()
    if first is None:
        return None
    # A final time before the first send (an edited ledger, a clock stepped back) must
    # not leave the timeline without a step.
    first, last = aware(first), max(aware(first), aware(last))
    span = max(1.0, (last - first).total_seconds())
    step = next((s for s in TIMELINE_STEPS if span / s <= points), TIMELINE_STEPS[-1])
    start = int(first.timestamp()) // step * step
    size = int((last.timestamp() - start) // step) + 1
    delivered = sa.and_(where, messages.c.status == Status.DELIVERED.value)
    return Timeline(
        start=datetime.fromtimestamp(start, UTC),
        step=step,
        sent=_counts(conn, where, messages.c.sent_at, start, step, size),
        delivered=_counts(conn, delivered, messages.c.final_at, start, step, size),
    )


def aware(moment: Any) -> datetime:
    """Aggregates bypass the column type: SQLite gives text, PostgreSQL an aware time."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
