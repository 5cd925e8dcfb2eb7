"""Providers halted by an error only a person can fix, and why.

A halt is per provider instance, not per campaign: bad credentials or an exhausted
balance stop every campaign sending through that provider, and none other.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.status import Status
from ledger.schema import campaigns, events, key_of, messages, now, provider_halts


def halt(engine: Engine, provider: str, reason: str) -> None:
    """Stop ``provider`` (the first reason is kept if it is already halted)."""
    with engine.begin() as conn:
        if conn.execute(
            sa.select(provider_halts.c.provider).where(provider_halts.c.provider == provider)
        ).first():
            return
        at = now()
        conn.execute(provider_halts.insert().values(provider=provider, reason=reason, at=at))
        for (campaign_id,) in conn.execute(
            sa.select(campaigns.c.id).where(campaigns.c.provider == provider)
        ):
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


def clear(engine: Engine, provider: str) -> list[tuple[str, int]]:
    """Let ``provider`` send again. Returns the (campaign, batch) pairs still waiting on it,
    for the caller to put back on the queue.

    Raises:
        LookupError: the provider was not halted.
    """
    with engine.begin() as conn:
        if not conn.execute(
            provider_halts.delete().where(provider_halts.c.provider == provider)
        ).rowcount:
            raise LookupError(provider)
        running = (
            conn.execute(
                sa.select(campaigns.c.id).where(
                    campaigns.c.provider == provider, campaigns.c.state == "running"
                )
            )
            .scalars()
            .all()
        )
        waiting = []
        for campaign_id in running:
            batches = conn.execute(
                sa.select(messages.c.batch)
                .where(
                    messages.c.campaign_key == key_of(campaign_id),
                    messages.c.status == Status.QUEUED.value,
                )
                .distinct()
            ).scalars()
            waiting += [(campaign_id, batch) for batch in batches]
        return waiting
