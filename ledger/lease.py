"""Messages a worker may have lost, for the reaper (``worker.upkeep.recovery``):
rows a dead worker left ``sending`` past the lease, and rows given back to the queue
whose job never came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
    return _settle(engine, _sending(engine, now() - lease), resend_handed, "lease_expired")


def reap_unheld(
    engine: Engine,
    held: set[str],
    grace: timedelta,
    resend_handed: Callable[[str], bool] = lambda _: False,
) -> Reaped:
    """Settle, as ``reap`` does, messages ``sending`` for more than ``grace`` under a
    claim no live worker holds (``held``: the tokens live workers published, see
    ``worker.processes.liveness``): its worker died, or its batch ended in an error."""
    rows = [row for row in _sending(engine, now() - grace) if row.claim_token not in held]
    return _settle(engine, rows, resend_handed, "claim_abandoned")


def _sending(engine: Engine, claimed_before: datetime) -> list[Any]:
    """Rows ``sending`` since before ``claimed_before`` (a partial index holds only the
    rows in flight: this stays cheap however large the ledger grows)."""
    query = (
        sa.select(
            messages.c.id,
            messages.c.handed_at,
            messages.c.batch,
            messages.c.provider,
            messages.c.claim_token,
            campaigns.c.id.label("campaign"),
        )
        # Without its ON clause SQLAlchemy infers the same one from the foreign key.
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)  # pragma: no mutate
        .where(
            messages.c.status == Status.SENDING.value,
            # ``<=`` differs only for a claim made at the cutoff's very microsecond, which
            # the reaper's own clock picks: nothing can rely on it.
            messages.c.claimed_at < claimed_before,  # pragma: no mutate
        )
    )
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def _settle(
    engine: Engine, rows: list[Any], resend_handed: Callable[[str], bool], why: str
) -> Reaped:
    requeued: dict[tuple[str, int, str], int] = {}
    unknown = 0
    for row in rows:
        handed = row.handed_at is not None
        if not handed or resend_handed(row.provider):
            code = f"{why}_resend_with_key" if handed else why
            # Conditional on the claim (a row another worker claimed since stays its own)
            # and, when it looked unhanded, on being so still under the row's lock: its
            # worker may be alive and handing it over right now (a batch slowed by its
            # rate past the lease); given back then, it would go out twice.
            if record_outcome(
                engine, row.id, Status.QUEUED, "reaper", code, row.claim_token, not handed
            ):
                job = (row.campaign, row.batch, row.provider)
                requeued[job] = requeued.get(job, 0) + 1
        elif record_outcome(
            engine, row.id, Status.UNKNOWN, "reaper", f"{why}_after_handover", row.claim_token
        ):
            unknown += 1
    return Reaped(requeued, unknown)


def stranded(
    engine: Engine, idle: timedelta, claimed_only: bool = True
) -> dict[tuple[str, int, str], int]:
    """Messages queued in running campaigns and left alone more than ``idle``: by
    (campaign, batch, provider). Their job may be lost: a worker that gave them back
    because Redis went away cannot count on dramatiq's retry (its enqueue fails in the
    same outage, and the failed job is then acknowledged), nor can a reaper or a
    follow-up whose enqueue failed after the rows moved; and a Redis that restarted
    without its data lost every job. ``claimed_only``: only rows given back after a claim
    (the lease's rule, which cannot see Redis); otherwise rows never claimed too (the
    caller then compares with the jobs Redis holds). Enqueueing their batch again is
    always safe: a job that finds nothing to claim sends nothing."""
    cutoff = now() - idle
    touched = sa.func.coalesce(messages.c.updated_at, campaigns.c.created_at)
    query = (
        sa.select(campaigns.c.id, messages.c.batch, messages.c.provider, sa.func.count())
        # Without its ON clause SQLAlchemy infers the same one from the foreign key.
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)  # pragma: no mutate
        .where(
            campaigns.c.state == "running",
            messages.c.status == Status.QUEUED.value,
            touched < cutoff,  # pragma: no mutate (``<=``: only at the cutoff's microsecond)
        )
        .group_by(campaigns.c.id, messages.c.batch, messages.c.provider)
    )
    if claimed_only:
        query = query.where(messages.c.claimed_at.is_not(None))
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
            )
            .values(updated_at=now())
        ).rowcount
