"""Providers halted by an error only a person can fix, and why; and moving a halted
provider's waiting messages to a fallback provider.

A halt is per provider instance, not per campaign: bad credentials or an exhausted
balance stop every campaign sending through that provider, and none other.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import Status
from ledger.audit.actions import record_action
from ledger.schema import campaigns, events, key_of, messages, now, provider_halts

_QUEUED = Status.QUEUED.value


def _running_on(conn: Connection, provider: str) -> list[str]:
    """Running campaigns with messages still waiting for ``provider`` (or routed to it
    by default)."""
    waiting = (
        sa.select(messages.c.id)
        .where(
            messages.c.campaign_key == campaigns.c.key,
            messages.c.provider == provider,
            messages.c.status.in_([_QUEUED, Status.SENDING.value]),
        )
        .exists()
    )
    query = sa.select(campaigns.c.id).where(
        campaigns.c.state == "running", sa.or_(campaigns.c.provider == provider, waiting)
    )
    return list(conn.scalars(query.order_by(campaigns.c.key)))


def halt(engine: Engine, provider: str, reason: str) -> None:
    """Stop ``provider`` (the first reason is kept if it is already halted)."""
    with engine.begin() as conn:
        if conn.execute(
            sa.select(provider_halts.c.provider).where(provider_halts.c.provider == provider)
        ).first():
            return
        at = now()
        conn.execute(provider_halts.insert().values(provider=provider, reason=reason, at=at))
        for campaign_id in _running_on(conn, provider):
            conn.execute(
                events.insert().values(
                    campaign_id=campaign_id,
                    at=at,
                    source="worker",
                    detail={"provider_halted": provider, "reason": reason},
                )
            )


def halted(engine: Engine, provider: str) -> str | None:
    """Why ``provider`` is halted, or ``None`` when it may send."""
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(provider_halts.c.reason).where(provider_halts.c.provider == provider)
        )


def all_halts(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(provider_halts.c.provider, provider_halts.c.reason)).all()
        )


def halts_since(engine: Engine) -> dict[str, tuple[str, datetime]]:
    """Every halted provider: ``name -> (why, since when)`` (aware UTC), from the same
    table the worker asks before each batch (``ledger.summary.load_for_batch``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(provider_halts.c.provider, provider_halts.c.reason, provider_halts.c.at)
        ).all()
    return {name: (why, at) for name, why, at in rows}


def clear(engine: Engine, provider: str) -> list[tuple[str, int]]:
    """Let ``provider`` send again. Returns the (campaign, batch) pairs still waiting on it,
    for the caller to put back on its queue.

    Raises:
        LookupError: the provider was not halted.
    """
    with engine.begin() as conn:
        if not conn.execute(
            provider_halts.delete().where(provider_halts.c.provider == provider)
        ).rowcount:
            raise LookupError(provider)
        waiting = []
        for campaign_id in _running_on(conn, provider):
            batches = conn.execute(
                sa.select(messages.c.batch)
                .where(
                    messages.c.campaign_key == key_of(campaign_id),
                    messages.c.status == _QUEUED,
                    messages.c.provider == provider,
                )
                .distinct()
                .order_by(messages.c.batch)
            ).scalars()
            waiting += [(campaign_id, batch) for batch in batches]
            record_action(conn, "provider_resumed", campaign_id, provider=provider)
        record_action(conn, "provider_resumed", provider=provider)
        return waiting


def reroute(
    engine: Engine,
    campaign_id: str,
    batch: int,
    halted_provider: str,
    fallback: str,
    countries: Collection[str] | None = None,
) -> int:
    """Move a batch's messages still ``queued`` for ``halted_provider`` to ``fallback``
    (only those of ``countries``, when the fallback reaches only those). Nothing handed
    over moves: a message that may have gone out is never offered to a second provider.
    One campaign event records the move. Returns how many moved."""
    which = [
        messages.c.campaign_key == key_of(campaign_id),
        messages.c.batch == batch,
        messages.c.provider == halted_provider,
        messages.c.status == _QUEUED,
    ]
    if countries is not None:
        which.append(messages.c.country.in_(sorted(countries)))
    at = now()
    with engine.begin() as conn:
        moved = conn.execute(
            messages.update().where(*which).values(provider=fallback, updated_at=at)
        ).rowcount
        if moved:
            conn.execute(
                events.insert().values(
                    campaign_id=campaign_id,
                    at=at,
                    source="worker",
                    detail={
                        "rerouted": moved,
                        "batch": batch,
                        "from_provider": halted_provider,
                        "to_provider": fallback,
                    },
                )
            )
    return moved
