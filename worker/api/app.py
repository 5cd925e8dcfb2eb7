"""The API's routes, under ``/v1``. Each names the role it needs (``worker.api.auth``):
an auditor reads, an operator also changes campaigns and providers.

This first step serves campaigns (a page of the list; one with its counts, per channel
when it has several, and what it waits for; pause, resume, cancel) and providers (the
list, halts, resume). Plans, launches, recipients, reports, suppressions and audit routes
come next (issue #23).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from ledger.accounts import Account
from worker.api import problems
from worker.api.auth import requires
from worker.api.problems import Problem
from worker.runtime import Runtime
from worker.web.auth_throttle import AuthThrottle

READ, CHANGE = requires("auditor"), requires("operator")
#: A campaign's state as the list shows it (``ledger.listing.STATES``).
ShownState = Literal["scheduled", "running", "halted", "completed", "paused", "cancelled"]
#: How long a session (a token had by logging in with a password) lives.
SESSION = timedelta(hours=12)


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
    """One campaign as ``loa campaign status --json`` tells it."""

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


class RecipientHistory(BaseModel):
    """Every message to one number across campaigns, with its events. ``number`` is
    masked (``+8491*****78``) unless the caller's role may see whole numbers (operator);
    ``complete`` is false when retention replaced some numbers by a keyed HMAC that
    could not be searched (no ``LOA_RETENTION_KEY``)."""

    number: str
    masked: bool
    messages: list[dict[str, Any]]
    complete: bool
    unsearchable: list[str]


class Login(BaseModel):
    """An account's name and password, for a session token."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1000)


class Session(BaseModel):
    """A session: a token like any (``Authorization: Bearer``), living ``SESSION``."""

    token: str
    account: str
    role: str
    expires_at: datetime


class Provider(BaseModel):
    name: str
    type: str
    halted: str | None


def make_app(runtime: Runtime) -> FastAPI:
    """The API on ``runtime``'s ledger and providers."""
    app = FastAPI(
        title="Loa",
        version="1",
        # Every route may answer these, as problem details (``worker.api.problems``).
        responses=problems.described(401, 403, 404, 409, 422, 429, 500),
        description="Campaigns, recipients, reports and the audit log of Loa, for the "
        "province's systems. Every route needs `Authorization: Bearer TOKEN` "
        "(`loa users token NAME`); errors are RFC 9457 problem details.",
    )
    app.state.runtime = runtime
    problems.install(app)

    throttle = AuthThrottle(burst=5, every=20.0)

    @app.post("/v1/sessions", response_model=Session, tags=["accounts"])
    def login(body: Login, request: Request) -> Session:
        """A session token for a person who logs in with a password (a system uses an
        API token of its own: ``loa users token``). Failures are slowed per account and
        per address alike: 5 at once, then one every 20 s (429 and ``Retry-After``
        before the password is even checked), so a password cannot be guessed online."""
        from ledger.accounts import Unauthorized, by_password, issue_token

        doors = (f"account:{body.name}", f"address:{request.client.host if request.client else ''}")
        wait = max(throttle.wait(door) for door in doors)
        if wait > 0:
            raise Problem(429, "too many failed logins; wait", "throttled",
                          retry_after=math.ceil(wait))  # fmt: skip
        try:
            found = by_password(runtime.engine, body.name, body.password)
        except Unauthorized:
            for door in doors:
                throttle.failed(door)
            raise Problem(
                401, "the name or the password is wrong, or the account disabled"
            ) from None
        from ledger.audit.actions import ACTING_AS

        ACTING_AS.set(f"api:{found.name}")
        _, text, until = issue_token(runtime.engine, found.name, SESSION, "session")
        return Session(token=text, account=found.name, role=found.role, expires_at=until)

    @app.get("/v1/campaigns", response_model=CampaignPage, tags=["campaigns"])
    def campaigns(
        caller: Annotated[Account, Depends(READ)],
        state: Annotated[
            list[ShownState] | None, Query(description="shown state(s) to keep")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> CampaignPage:
        from ledger.listing import list_campaigns

        lines, more = list_campaigns(runtime.engine, state or (), limit=offset + limit)
        page = [line.as_dict() for line in lines[offset:]]
        return CampaignPage(
            campaigns=[CampaignLine(**line) for line in page],
            next=offset + limit if more else None,
        )

    @app.get("/v1/campaigns/{campaign_id}", response_model=Campaign, tags=["campaigns"])
    def campaign(campaign_id: str, caller: Annotated[Account, Depends(READ)]) -> Campaign:
        from worker.campaign.waiting import explain

        summary = _summary(runtime, campaign_id)
        standing = explain(runtime, summary)
        found = {**standing.summary.as_dict()}
        return Campaign(
            campaign=campaign_id,
            name=found["name"],
            state=found["state"],
            state_reason=found["state_reason"],
            recipients=found["recipients"],
            statuses=found["statuses"],
            waiting_for=found["waiting_for"],
            channels=standing.channels.as_dict() if standing.channels else None,
        )

    @app.post("/v1/campaigns/{campaign_id}/{action}", response_model=Action, tags=["campaigns"])
    def act(campaign_id: str, action: str, caller: Annotated[Account, Depends(CHANGE)]) -> Action:
        from ledger.summary import CampaignNotFound, CampaignStateError
        from worker.campaign import control

        steps = {"pause": control.pause, "resume": control.resume, "cancel": control.cancel}
        if action not in steps:
            raise Problem(404, f"no action {action!r}: pause, resume or cancel")
        try:
            changed = steps[action](runtime, campaign_id)
        except CampaignNotFound:
            raise Problem(404, f"no campaign {campaign_id!r}") from None
        except CampaignStateError as exc:
            raise Problem(409, str(exc), "campaign-state") from None
        return Action(campaign=campaign_id, action=action, changed=changed)

    @app.get(
        "/v1/recipients/{number}/history", response_model=RecipientHistory, tags=["recipients"]
    )
    def recipient_history(
        number: str, caller: Annotated[Account, Depends(READ)]
    ) -> RecipientHistory:
        from campaigns.phones import PhoneRejected, mask, normalise
        from ledger.history import history

        try:
            phone = normalise(number)
        except PhoneRejected as rejected:
            raise Problem(
                422,
                f"number: not a textable number ({rejected.reason.value})",
                "invalid-input",
                errors=[{"where": "path.number", "what": rejected.reason.value}],
            ) from None
        key = runtime.settings.retention_key
        found = history(runtime.engine, phone.e164, key.get_secret_value() if key else None)
        whole = caller.may("operator")  # an auditor never sees a whole number
        return RecipientHistory(
            number=phone.e164 if whole else mask(phone.e164),
            masked=not whole,
            messages=[message.as_dict() for message in found.messages],
            complete=found.complete,
            unsearchable=found.unsearchable,
        )

    @app.get("/v1/providers", response_model=list[Provider], tags=["providers"])
    def providers(caller: Annotated[Account, Depends(READ)]) -> list[Provider]:
        from ledger.halts import all_halts

        halts = all_halts(runtime.engine)
        return [
            Provider(name=name, type=instance.type, halted=halts.get(name))
            for name, instance in sorted(runtime.settings.providers.items())
        ]

    @app.post("/v1/providers/{name}/resume", tags=["providers"])
    def resume_provider(name: str, caller: Annotated[Account, Depends(CHANGE)]) -> dict[str, int]:
        from ledger.summary import CampaignStateError
        from worker.campaign import control

        if name not in runtime.settings.providers:
            raise Problem(404, f"no provider {name!r}")
        try:
            return {"batches": control.resume_provider(runtime, name)}
        except CampaignStateError as exc:
            raise Problem(409, str(exc), "provider-state") from None

    return app


def _summary(runtime: Runtime, campaign_id: str) -> Any:
    from ledger.summary import CampaignNotFound, summarise

    try:
        return summarise(runtime.engine, campaign_id)
    except CampaignNotFound:
        raise Problem(404, f"no campaign {campaign_id!r}") from None
