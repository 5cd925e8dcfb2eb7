"""Messages a worker may have lost, for the reaper (``worker.dispatch.reap_stale``):
rows a dead worker left ``sending`` past the lease, and rows given back to the queue
whose job never came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.status import Status
from ledger.messages import record_outcome
from ledger.schema import campaigns, key_of, messages, now


@dataclass(frozen=True, slots=True)
class Reaped:
    """What the reaper did: messages given back to the queue (by campaign, batch and
    provider, to enqueue again) and messages that may have gone out, now ``unknown``."""

    requeued: dict[tuple[str, int, str], int]
    unknown: int


def reap(
    engine: Engine, lease: timedelta, resend_handed: Callable[[str], bool] = lambda _: False
) -> Reaped:
    """Settle messages left ``sending`` longer than ``lease`` by a worker that died:
    never handed to a provider -> ``queued`` again; handed -> ``unknown`` (never resent
    blindly: the provider may have sent it), unless ``resend_handed(provider)`` says the
    provider has an idempotency key: then ``queued`` again too, and the resend, carrying
    the same key, cannot become a second SMS."""
    cutoff = now() - lease
    stale = (
        sa.select(
            messages.c.id,
            messages.c.handed_at,
            messages.c.batch,
            messages.c.provider,
            campaigns.c.id.label("campaign"),
        )
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)
        .where(messages.c.status == Status.SENDING.value, messages.c.claimed_at < cutoff)
    )
    requeued: dict[tuple[str, int, str], int] = {}
    unknown = 0
    with engine.connect() as conn:
        rows = conn.execute(stale).all()
    for message_id, handed_at, batch, provider, campaign in rows:
        if handed_at is None or resend_handed(provider):
            code = "lease_expired" if handed_at is None else "lease_expired_resend_with_key"
            if record_outcome(engine, message_id, Status.QUEUED, "reaper", code):
                job = (campaign, batch, provider)
                requeued[job] = requeued.get(job, 0) + 1
        elif record_outcome(
            engine, message_id, Status.UNKNOWN, "reaper", "lease_expired_after_handover"
        ):
            unknown += 1
    return Reaped(requeued, unknown)


def stranded(engine: Engine, idle: timedelta) -> dict[tuple[str, int, str], int]:
    """Messages given back to the queue (claimed once, released) more than ``idle`` ago
    and still queued, in running campaigns: by (campaign, batch, provider). Their job may
    be lost: a worker that gave them back because Redis went away cannot count on
    dramatiq's retry (its enqueue fails in the same outage, and the failed job is then
    acknowledged), nor can a reaper or a follow-up whose enqueue failed after the rows
    moved. Enqueueing their batch again is always safe: a job that finds nothing to claim
    sends nothing."""
    cutoff = now() - idle
    query = (
        sa.select(campaigns.c.id, messages.c.batch, messages.c.provider, sa.func.count())
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)
        .where(
            campaigns.c.state == "running",
            messages.c.status == Status.QUEUED.value,
            messages.c.claimed_at.is_not(None),
            messages.c.updated_at < cutoff,
        )
        .group_by(campaigns.c.id, messages.c.batch, messages.c.provider)
    )
    with engine.connect() as conn:
        return {(c, b, p): n for c, b, p, n in conn.execute(query)}


def renew(engine: Engine, campaign_id: str, batch: int, provider: str) -> int:
    """Note that a stranded batch was enqueued again now (``updated_at``), so that the
    next look waits as long again before doing it twice. Returns the rows touched."""
    with engine.begin() as conn:
        return conn.execute(
            messages.update()
            .where(
                messages.c.campaign_key == key_of(campaign_id),
                messages.c.batch == batch,
                messages.c.provider == provider,
                messages.c.status == Status.QUEUED.value,
                messages.c.claimed_at.is_not(None),
            )
            .values(updated_at=now())
        ).rowcount
