"""Operators' control of a running campaign: pause, resume, cancel.

Pausing stops workers from claiming the campaign's batches (what is already claimed
finishes); resuming puts its waiting batches back on the queue, and clears a halt once
the operator has fixed its cause; cancelling ends every message not yet claimed as
``cancelled``, for good.
"""

from __future__ import annotations

from ledger.halts import clear
from ledger.messages import cancel_campaign, set_campaign_state, start_due
from ledger.summary import CampaignStateError, load_campaign, queued_batches
from worker.dispatch import enqueue_batch
from worker.logging import get_logger
from worker.runtime import Runtime

log = get_logger("loa.control")


def pause(runtime: Runtime, campaign_id: str) -> None:
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state not in ("running", "paused"):
        raise CampaignStateError(
            f"campaign {campaign_id} is {campaign.state}: only a running campaign can be paused"
        )
    set_campaign_state(
        runtime.engine, campaign_id, "paused", "paused by an operator", source="operator"
    )
    log.info("campaign.paused", campaign_id=campaign_id)


def resume(runtime: Runtime, campaign_id: str) -> int:
    """Returns how many batches were put back on the queue."""
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state == "cancelled":
        raise CampaignStateError(f"campaign {campaign_id} was cancelled: it cannot be resumed")
    set_campaign_state(runtime.engine, campaign_id, "running", None, source="operator")
    batches = queued_batches(runtime.engine, campaign_id)
    for batch, provider in batches:
        enqueue_batch(provider, campaign_id, batch)
    log.info("campaign.resumed", campaign_id=campaign_id, batches=len(batches))
    return len(batches)


def cancel(runtime: Runtime, campaign_id: str) -> int:
    """Returns how many messages were cancelled."""
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state == "cancelled":
        raise CampaignStateError(f"campaign {campaign_id} is already cancelled")
    cancelled = cancel_campaign(runtime.engine, campaign_id)
    log.info("campaign.cancelled", campaign_id=campaign_id, messages=cancelled)
    return cancelled


def resume_provider(runtime: Runtime, provider: str) -> int:
    """Let a halted provider send again (after the operator fixed the cause) and put every
    batch still waiting on it back on its queue. Returns how many batches.

    Raises:
        CampaignStateError: the provider was not halted.
    """
    try:
        waiting = clear(runtime.engine, provider)
    except LookupError:
        raise CampaignStateError(f"provider {provider!r} is not halted") from None
    for campaign_id, batch in waiting:
        enqueue_batch(provider, campaign_id, batch)
    log.info("provider.resumed", provider=provider, batches=len(waiting))
    return len(waiting)


def start_scheduled(runtime: Runtime) -> dict[str, int]:
    """Start the campaigns launched with ``--at`` whose time has come: their batches go on
    the queues. Returns the batches enqueued per campaign started."""
    started = {}
    for campaign_id in start_due(runtime.engine):
        batches = queued_batches(runtime.engine, campaign_id)
        for batch, provider in batches:
            enqueue_batch(provider, campaign_id, batch)
        started[campaign_id] = len(batches)
        log.info("campaign.started", campaign_id=campaign_id, batches=len(batches))
    return started
