"""Campaigns: a page of the list, one with its counts (per channel when it has several)
and what it waits for; pause, resume, cancel."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from campaigns.status import Status
from scripts.api import problems
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
    as_of: datetime = Field(description="when it was counted")
    age_seconds: float = Field(description="how long ago (at most 30; under 1 with fresh=true)")


class Action(BaseModel):
    """What a pause, resume or cancel did, as ``loa campaign pause|resume|cancel --json``
    says it: ``changed`` (1 when paused; batches queued; messages cancelled),
    ``already`` (it was so before: nothing changed), and for a cancel the messages
    ``still_sending`` (workers hold them; they end on their own)."""

    campaign: str
    action: str
    changed: int = Field(description="1 when paused; batches queued; messages cancelled")
    already: bool = False
    still_sending: int | None = None


@router.get("/v1/campaigns", response_model=CampaignPage)
def campaigns(
    caller: Reader,
    runtime: Served,
    state: Annotated[list[ShownState] | None, Query(description="shown state(s) to keep")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CampaignPage:
    """Campaigns, newest first (``loa campaign list``): each one's state, recipients,
    those reached and the share. ``state`` keeps those in the state(s) named."""
    from ledger.listing import list_campaigns

    lines, more = list_campaigns(runtime.engine, state or (), limit=offset + limit)
    page = [line.as_dict() for line in lines[offset:]]
    return CampaignPage(
        campaigns=[CampaignLine(**line) for line in page],
        next=offset + limit if more else None,
    )


@router.get(
    "/v1/campaigns/{campaign_id}", response_model=Campaign, responses=problems.described(404)
)
def campaign(
    campaign_id: str,
    caller: Reader,
    request: Request,
    fresh: Annotated[bool, Query(description="a count of this second, not up to 30 s old")] = False,
) -> Campaign:
    """Where one campaign stands (``loa campaign status --json``): its recipients in each
    status, per channel and provider, the send rate, the time left, and what it waits
    for, with the command and the route (``lifted_by_api``) that lift the wait. Counted
    at most once a second for every caller, and served at once while a newer count is
    made (``as_of``, ``age_seconds``: up to 30 s old; ``fresh=true`` to wait for one of
    this second). Its state, reason and halts are never older than a second, whichever
    process or command changed them."""
    return Campaign(**request.app.state.standings.get(campaign_id, fresh))


def standing_of(runtime: Runtime, campaign_id: str) -> dict[str, Any]:
    """Count the campaign's standing now (``scripts.api.standing`` shares it)."""
    from worker.campaign.waiting import explain

    standing = explain(runtime, summary_of(runtime, campaign_id))
    found = {**standing.summary.as_dict(), **standing.as_dict()}
    found["channels"] = standing.channels.as_dict() if standing.channels else None
    waiting = found.get("waiting_for")
    if waiting and waiting.get("lifted_by"):  # the route that lifts it, beside the command
        waiting["lifted_by_api"] = over_http(waiting["lifted_by"])
    return found


def version_of(runtime: Runtime, campaign_id: str) -> tuple[Any, ...]:
    """What changes a campaign's standing beyond its counts, read cheaply (one row, and
    the halts): its stored state and reason, and the providers halted. Another process's
    pause or a provider's resume shows here before an older count is served."""
    import sqlalchemy as sa

    from ledger.halts import all_halts
    from ledger.schema import campaigns

    with runtime.engine.connect() as conn:
        row = conn.execute(
            sa.select(campaigns.c.state, campaigns.c.state_reason).where(
                campaigns.c.id == campaign_id
            )
        ).first()
    return (tuple(row) if row else None, tuple(sorted(all_halts(runtime.engine).items())))


#: The commands that lift a wait, as the routes that do the same.
_ROUTES = (
    (re.compile(r"loa campaign resume (\S+)"), r"POST /v1/campaigns/\1/resume"),
    (re.compile(r"loa provider resume (\S+)"), r"POST /v1/providers/\1/resume"),
)


def over_http(commands: str) -> str | None:
    """``loa campaign resume X`` as ``POST /v1/campaigns/X/resume`` (and a provider's
    resume likewise); ``None`` when no route lifts it (time, ``loa scheduler``)."""
    said = [
        pattern.sub(route, command)
        for command in commands.split("; ")
        for pattern, route in _ROUTES
        if pattern.fullmatch(command)
    ]
    return "; ".join(said) or None


def _act(action: str, request: Request, campaign_id: str) -> Action:
    runtime = request.app.state.runtime
    known = True
    try:
        return _acted(action, runtime, campaign_id)
    except Problem as problem:
        known = problem.status != 404  # no such campaign: nothing to forget (nor to keep)
        raise
    finally:
        if known:
            request.app.state.standings.forget(campaign_id)  # its next look counts anew


def _acted(action: str, runtime: Runtime, campaign_id: str) -> Action:
    from ledger.summary import CampaignNotFound, CampaignStateError, load_campaign, summarise
    from worker.campaign import control

    steps = {"pause": control.pause, "resume": control.resume, "cancel": control.cancel}
    try:
        before = load_campaign(runtime.engine, campaign_id).state
        changed = 0 if control.left_so(action, before) else steps[action](runtime, campaign_id)
    except CampaignNotFound:
        raise Problem(404, f"no campaign {campaign_id!r}") from None
    except CampaignStateError as exc:
        raise Problem(409, str(exc), "campaign-state") from None
    sending = None
    if action == "cancel":
        sending = summarise(runtime.engine, campaign_id).statuses.get(Status.SENDING, 0)
    return Action(campaign=campaign_id, action=action, changed=changed,
                  already=control.already(action, before, changed),
                  still_sending=sending)  # fmt: skip


@router.post(
    "/v1/campaigns/{campaign_id}/pause",
    response_model=Action,
    responses=problems.described(403, 404, 409),
)
def pause(campaign_id: str, caller: Changer, request: Request) -> Action:
    """No new sends; those in flight end (``loa campaign pause``). A paused one answers
    ``already``; 409 when there is nothing left to pause (completed, cancelled)."""
    return _act("pause", request, campaign_id)


@router.post(
    "/v1/campaigns/{campaign_id}/resume",
    response_model=Action,
    responses=problems.described(403, 404, 409),
)
def resume(campaign_id: str, caller: Changer, request: Request) -> Action:
    """Send again; ``changed``: the batches queued (``loa campaign resume``)."""
    return _act("resume", request, campaign_id)


@router.post(
    "/v1/campaigns/{campaign_id}/cancel",
    response_model=Action,
    responses=problems.described(403, 404, 409),
)
def cancel(campaign_id: str, caller: Changer, request: Request) -> Action:
    """Stop for good: what waits becomes ``cancelled`` (``changed``: how many;
    ``still_sending``: held by workers, they end on their own). A cancelled one answers
    ``already``."""
    return _act("cancel", request, campaign_id)


def summary_of(runtime: Runtime, campaign_id: str) -> Any:
    """The campaign's summary (``ledger.summary``). Raises: Problem 404."""
    from ledger.summary import CampaignNotFound, summarise

    try:
        return summarise(runtime.engine, campaign_id)
    except CampaignNotFound:
        raise Problem(404, f"no campaign {campaign_id!r}") from None
