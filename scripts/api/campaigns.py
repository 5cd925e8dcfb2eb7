"""Campaigns: a page of the list, one with its counts (per channel when it has several)
and what it waits for; pause, resume, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from scripts.api.common import Changer, Limit, Offset, Reader, Served
from scripts.api.problems import Problem
from worker.runtime import Runtime

router = APIRouter(tags=["campaigns"])
#: A campaign's state as the list shows it (``ledger.listing.STATES``).
ShownState = Literal["scheduled", "running", "halted", "completed", "paused", "cancelled"]


class CampaignLine(BaseModel):
    """One campaign in the list."""

    campaign: str
    name: str
    state: str
    created_at: datetime
    recipients: int
    delivered: int
    share: float | None
    channels: int


class CampaignPage(BaseModel):
    """A page of campaigns, newest first; ``next``: the ``offset`` of the next page."""

    campaigns: list[CampaignLine]
    next: int | None


class Campaign(BaseModel):
    """One campaign as ``loa campaign status --json`` tells it: the typed fields below,
    and the rest of that object as it is (intake counts, ``by_provider``, ``providers``
    with each one's queue, rate and halt, ``rate_per_second``, ``eta_seconds``,
    ``finishes_at``, ``resumes_at`` …)."""

    model_config = ConfigDict(extra="allow")

    campaign: str
    name: str
    state: str
    state_reason: str | None
    recipients: int
    statuses: dict[str, int]
    waiting_for: dict[str, Any] | None
    channels: dict[str, Any] | None = None


class Action(BaseModel):
    """What a pause, resume or cancel did."""

    campaign: str
    action: str
    changed: int = Field(description="1 when paused; batches queued; messages cancelled")


@router.get("/v1/campaigns", response_model=CampaignPage)
def campaigns(
    caller: Reader,
    runtime: Served,
    state: Annotated[list[ShownState] | None, Query(description="shown state(s) to keep")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CampaignPage:
    from ledger.listing import list_campaigns

    lines, more = list_campaigns(runtime.engine, state or (), limit=offset + limit)
    page = [line.as_dict() for line in lines[offset:]]
    return CampaignPage(
        campaigns=[CampaignLine(**line) for line in page],
        next=offset + limit if more else None,
    )


@router.get("/v1/campaigns/{campaign_id}", response_model=Campaign)
def campaign(campaign_id: str, caller: Reader, runtime: Served) -> Campaign:
    from worker.campaign.waiting import explain

    standing = explain(runtime, summary_of(runtime, campaign_id))
    found = {**standing.summary.as_dict(), **standing.as_dict()}
    found["channels"] = standing.channels.as_dict() if standing.channels else None
    return Campaign(**found)


def _act(action: str, runtime: Runtime, campaign_id: str) -> Action:
    from ledger.summary import CampaignNotFound, CampaignStateError
    from worker.campaign import control

    steps = {"pause": control.pause, "resume": control.resume, "cancel": control.cancel}
    try:
        changed = steps[action](runtime, campaign_id)
    except CampaignNotFound:
        raise Problem(404, f"no campaign {campaign_id!r}") from None
    except CampaignStateError as exc:
        raise Problem(409, str(exc), "campaign-state") from None
    return Action(campaign=campaign_id, action=action, changed=changed)


@router.post("/v1/campaigns/{campaign_id}/pause", response_model=Action)
def pause(campaign_id: str, caller: Changer, runtime: Served) -> Action:
    """No new sends; those in flight end (``loa campaign pause``). 409 unless running."""
    return _act("pause", runtime, campaign_id)


@router.post("/v1/campaigns/{campaign_id}/resume", response_model=Action)
def resume(campaign_id: str, caller: Changer, runtime: Served) -> Action:
    """Send again; ``changed``: the batches queued (``loa campaign resume``)."""
    return _act("resume", runtime, campaign_id)


@router.post("/v1/campaigns/{campaign_id}/cancel", response_model=Action)
def cancel(campaign_id: str, caller: Changer, runtime: Served) -> Action:
    """Stop for good: what waits becomes ``cancelled`` (``changed``: how many)."""
    return _act("cancel", runtime, campaign_id)


def summary_of(runtime: Runtime, campaign_id: str) -> Any:
    """The campaign's summary (``ledger.summary``). Raises: Problem 404."""
    from ledger.summary import CampaignNotFound, summarise

    try:
        return summarise(runtime.engine, campaign_id)
    except CampaignNotFound:
        raise Problem(404, f"no campaign {campaign_id!r}") from None
