"""Operators' control of a running campaign: pause, resume, cancel.

Pausing stops workers from claiming the campaign's batches (what is already claimed
finishes); resuming puts its waiting batches back on the queue, and clears a halt once
the operator has fixed its cause; cancelling ends every message not yet claimed as
``cancelled``, for good (a claim given back later ends ``cancelled`` too).

Each command applies only where it means something, and is refused otherwise, naming the
campaign's state (``CampaignStateError``, exit 2) and changing nothing:

============  =========  =========  ============================  =========
command       running    paused     finished (nothing queued or   scheduled,
                                    sending; not arrivals')       cancelled
============  =========  =========  ============================  =========
pause         paused     no change  refused                       refused
resume        re-queue   running    refused (unless paused)       refused
cancel        cancelled  cancelled  refused                       refused
============  =========  =========  ============================  =========

A scheduled campaign can be cancelled too (it has sent nothing). The month's arrivals
campaign is never "finished": welcomes keep joining it.
"""

from __future__ import annotations

from campaigns.status import Status
from ledger.halts import clear
from ledger.messages import cancel_campaign, set_campaign_state, start_due
from ledger.summary import (
    CampaignRecord,
    CampaignStateError,
    load_campaign,
    queued_batches,
    status_counts,
)
from worker.logging import get_logger
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime
from worker.upkeep.recovery import batches_without_job

log = get_logger("loa.control")

FINISHED = "has nothing left to send (every recipient was sent or settled)"
#: The state a pause or cancel leaves a campaign in: asked again, nothing changes.
LEAVES = {"pause": "paused", "cancel": "cancelled"}


def left_so(action: str, before: str) -> bool:
    """Whether ``action`` finds the campaign, in state ``before``, as it would leave it
    (a second pause or cancel: nothing to do, and no error)."""
    return LEAVES.get(action) == before


def already(action: str, before: str, changed: int) -> bool:
    """Whether ``action`` changed nothing because it was so before: the campaign was
    left so (``left_so``), or a resume of a running one queued no batch. What ``loa
    campaign pause|resume|cancel --json`` and the API answer as ``already``."""
    return left_so(action, before) or (action == "resume" and before == "running" and not changed)


def _finished(runtime: Runtime, campaign: CampaignRecord) -> bool:
    """Nothing left to send, and no more to come: every recipient was sent (its receipt
    may still come) or is in a final status."""
    if campaign.open_ended:
        return False
    counts = status_counts(runtime.engine, campaign.id)
    return counts[Status.QUEUED] + counts[Status.SENDING] == 0


def _refuse(campaign: CampaignRecord, action: str, why: str) -> CampaignStateError:
    return CampaignStateError(f"campaign {campaign.id} {why}: it cannot be {action}")


def pause(runtime: Runtime, campaign_id: str) -> int:
    """Returns 1 when the campaign was paused, 0 when it already was.

    Raises:
        CampaignNotFound, CampaignStateError (not running, or finished).
    """
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state == "paused":
        return 0
    if campaign.state != "running":
        raise _refuse(campaign, "paused", f"is {campaign.state}")
    if _finished(runtime, campaign):
        raise _refuse(campaign, "paused", FINISHED)
    set_campaign_state(
        runtime.engine, campaign_id, "paused", "paused by an operator", source="operator"
    )
    log.info("campaign.paused", campaign_id=campaign_id)
    return 1


def resume(runtime: Runtime, campaign_id: str) -> int:
    """Put the campaign's waiting batches back on their queues (a paused one running
    again). Returns how many batches.

    Raises:
        CampaignNotFound, CampaignStateError (scheduled, cancelled, or finished).
    """
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state not in ("running", "paused"):
        raise _refuse(campaign, "resumed", f"is {campaign.state}")
    if campaign.state == "running" and _finished(runtime, campaign):
        raise _refuse(campaign, "resumed", FINISHED)
    if campaign.state == "paused":
        set_campaign_state(runtime.engine, campaign_id, "running", None, source="operator")
    batches = batches_without_job(runtime, campaign_id)
    for batch, provider in batches:
        enqueue_batch(provider, campaign_id, batch)
    log.info("campaign.resumed", campaign_id=campaign_id, batches=len(batches))
    return len(batches)


def cancel(runtime: Runtime, campaign_id: str) -> int:
    """Returns how many messages were cancelled.

    Raises:
        CampaignNotFound, CampaignStateError (already cancelled, or finished).
    """
    campaign = load_campaign(runtime.engine, campaign_id)
    if campaign.state == "cancelled":
        raise _refuse(campaign, "cancelled", "is already cancelled")
    if _finished(runtime, campaign):
        raise _refuse(campaign, "cancelled", FINISHED)
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
