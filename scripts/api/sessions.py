"""``POST /v1/sessions``: a person logs in with a password for a session token."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from scripts.api import problems
from scripts.api.common import Reader, Served
from scripts.api.problems import Problem
from worker.web.auth_throttle import AuthThrottle

router = APIRouter(tags=["accounts"])
#: How long a session (a token had by logging in with a password) lives.
SESSION = timedelta(hours=12)
#: Live sessions one account may hold at once (its people's screens, phones, scripts).
SESSIONS = 20


def throttle() -> AuthThrottle:
    """Failed logins slowed per account and per address alike: 5 at once, then one every
    20 s (one per app: ``app.state.throttle``)."""
    return AuthThrottle(burst=5, every=20.0)


class Login(BaseModel):
    """An account's name and password, for a session token."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1000)


class Session(BaseModel):
    """A session: a token like any (``Authorization: Bearer``), living 12 hours."""

    token: str
    account: str
    role: str
    expires_at: datetime


@router.delete("/v1/sessions", status_code=204, response_class=Response)
def logout(caller: Reader, request: Request, runtime: Served) -> Response:
    """Log out: the token this request carries stops working at once (a session's, or an
    API token's: its holder may end it without a shell)."""
    from ledger.api.accounts import revoke_own

    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    revoke_own(runtime.engine, token)
    return Response(status_code=204)


@router.post("/v1/sessions", response_model=Session, responses=problems.described(429))
def login(body: Login, request: Request, runtime: Served) -> Session:
    """A session token for a person who logs in with a password (a system uses an API
    token of its own: ``loa users token``). Failures are slowed per account and per
    address alike: 5 at once, then one every 20 s (429 and ``Retry-After`` before the
    password is even checked), so a password cannot be guessed online."""
    from ledger.api.accounts import Unauthorized, by_password, issue_token, live_tokens
    from ledger.audit.actions import ACTING_AS

    throttle = request.app.state.throttle
    doors = (f"account:{body.name}", f"address:{request.client.host if request.client else ''}")
    # Counted as failed before the password is checked, given back if it was right: logins
    # sent in parallel cannot all pass while each one's hash is being checked.
    wait = throttle.take(*doors)
    if wait > 0:
        raise Problem(429, "too many failed logins; wait", "throttled",
                      retry_after=math.ceil(wait))  # fmt: skip
    try:
        found = by_password(runtime.engine, body.name, body.password)
    except Unauthorized:
        raise Problem(401, "the name or the password is wrong, or the account disabled") from None
    throttle.give_back(*doors)
    if live_tokens(runtime.engine, found.name, "session") >= SESSIONS:
        # Each login is a token and an event in the log: unbounded, a script logging in
        # in a loop would grow both for ever.
        raise Problem(429, f"{found.name} has {SESSIONS} live sessions: end one "
                      "(DELETE /v1/sessions) or let one expire", "too-many-sessions",
                      retry_after=60)  # fmt: skip
    ACTING_AS.set(f"api:{found.name}")
    _, text, until = issue_token(runtime.engine, found.name, SESSION, "session")
    return Session(token=text, account=found.name, role=found.role, expires_at=until)
