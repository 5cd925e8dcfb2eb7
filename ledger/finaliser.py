"""The finaliser: every recipient ends in a final status, even when nobody tells us how.

- A message ``sent`` with no final receipt after its provider's receipt window
  (``RECEIPT_WINDOW_HOURS`` of the instance, 72 h by default: carriers report within a
  day or two, or never) becomes ``unknown`` (code ``no_final_receipt``). A receipt that
  turns up later still corrects it (``unknown`` -> a real final status).
- A message still ``queued`` once its campaign's validity has passed becomes ``expired``:
  nothing would send it any more (a worker expires it too, when its batch comes back).
- A message ``queued`` in a cancelled campaign becomes ``cancelled``. A release after
  the cancel already ends that way (``ledger.messages``); this is the net under it, so
  that no recipient of a cancelled campaign waits for good.

Each move is a bulk UPDATE with one event per message (source ``finaliser``), per
campaign, so a million stale rows cost a few statements, not a million.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import Status
from ledger.schema import campaigns, events, key_of, messages, now

DEFAULT_WINDOW = timedelta(hours=72)

#: The code each of the finaliser's moves leaves on the message (and in its event).
_CODES = {
    Status.UNKNOWN: "no_final_receipt",
    Status.EXPIRED: "validity_passed",
    Status.CANCELLED: "campaign_cancelled",
}


def _settle(
    engine: Engine, campaign_id: str, which: sa.ColumnElement[bool], old: Status, new: Status
) -> int:
    """Move the rows ``which`` from ``old`` to ``new``; the events name exactly the rows
    the UPDATE moved (a receipt that got there first keeps its row)."""
    at = now()
    values = {"status": new.value, "updated_at": at, "final_at": at, "error_code": _CODES[new]}
    with engine.begin() as conn:
        moved = conn.scalars(
            messages.update()
            .where(which, messages.c.status == old.value)
            .values(**values)
            .returning(messages.c.id)
        ).all()
        if moved:
            code = values.get("error_code")
            conn.execute(
                events.insert(),
                [
                    {
                        "campaign_id": campaign_id,
                        "message_id": message_id,
                        "at": at,
                        "source": "finaliser",
                        "from_status": old.value,
                        "to_status": new.value,
                        "code": code,
                    }
                    for message_id in moved
                ],
            )
    return len(moved)


def _with_queued(
    conn: Connection, condition: sa.ColumnElement[bool], status: Status = Status.QUEUED
) -> list[str]:
    """Ids of the campaigns meeting ``condition`` that still have messages in ``status``."""
    queued = (
        sa.select(messages.c.id)
        .where(
            messages.c.campaign_key == campaigns.c.key,
            messages.c.status == status.value,
        )
        .exists()
    )
    return list(conn.scalars(sa.select(campaigns.c.id).where(condition, queued)))


def finalise(engine: Engine, windows: Mapping[str, timedelta] | None = None) -> dict[str, int]:
    """Settle what no receipt or worker will settle. ``windows``: the receipt window per
    provider instance (others: 72 h). Returns how many became ``unknown``, ``expired``
    and ``cancelled``."""
    windows = windows or {}
    moment = now()
    done = {"unknown": 0, "expired": 0, "cancelled": 0}
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.select(campaigns.c.id, messages.c.provider)
            .join(messages, messages.c.campaign_key == campaigns.c.key)
            .where(messages.c.status == Status.SENT.value)
            .distinct()
        ).all()
        stale = _with_queued(conn, campaigns.c.valid_until < moment)
        cancelled = _with_queued(conn, campaigns.c.state == "cancelled")
        # A later channel's messages still standing by when the campaign's validity ended.
        standing = _with_queued(conn, campaigns.c.valid_until < moment, Status.STANDBY)
    for campaign_id, provider in waiting:
        cutoff = moment - windows.get(provider, DEFAULT_WINDOW)
        which = sa.and_(
            messages.c.campaign_key == key_of(campaign_id),
            messages.c.provider == provider,
            messages.c.status == Status.SENT.value,
            messages.c.sent_at < cutoff,
        )
        done["unknown"] += _settle(engine, campaign_id, which, Status.SENT, Status.UNKNOWN)
    for ended, new in ((stale, Status.EXPIRED), (cancelled, Status.CANCELLED)):
        for campaign_id in ended:
            which = sa.and_(
                messages.c.campaign_key == key_of(campaign_id),
                messages.c.status == Status.QUEUED.value,
            )
            done[new.value] += _settle(engine, campaign_id, which, Status.QUEUED, new)
    for campaign_id in standing:
        which = sa.and_(
            messages.c.campaign_key == key_of(campaign_id),
            messages.c.status == Status.STANDBY.value,
        )
        done["expired"] += _settle(engine, campaign_id, which, Status.STANDBY, Status.EXPIRED)
    # Messages with a validity of their own (a welcome: 12 h from the arrival).
    with engine.connect() as conn:
        overdue = conn.scalars(
            sa.select(campaigns.c.id)
            .join(messages, messages.c.campaign_key == campaigns.c.key)
            .where(messages.c.status == Status.QUEUED.value, messages.c.valid_until < moment)
            .distinct()
        ).all()
    for campaign_id in overdue:
        which = sa.and_(
            messages.c.campaign_key == key_of(campaign_id),
            messages.c.status == Status.QUEUED.value,
            messages.c.valid_until < moment,
        )
        done["expired"] += _settle(engine, campaign_id, which, Status.QUEUED, Status.EXPIRED)
    return done
