"""Who calls, and whether their role may: a bearer token of ``ledger.api.accounts`` on every
route, and the role each route needs (``requires``). A missing, unknown, expired or
revoked token is a 401; a role below the route's, a 403 and nothing changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ledger.api.accounts import Account, Unauthorized, by_token
from ledger.audit.actions import ACTING_AS
from scripts.api.problems import Problem


async def account(request: Request) -> Account:
    """The account of the request's ``Authorization: Bearer TOKEN``; acts as it for the
    request's log events (``api:NAME``).

    Raises:
        Problem: 401.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "send an API token: Authorization: Bearer TOKEN (loa users token)")
    try:
        found = await run_in_threadpool(by_token, request.app.state.runtime.engine, token.strip())
    except Unauthorized:
        raise Problem(
            401, "the token is unknown, expired or revoked, or its account disabled"
        ) from None
    # Set in the request's own context (an async dependency runs in it), which the
    # thread serving a sync route copies: the route's log events name the account.
    ACTING_AS.set(f"api:{found.name}")
    return found


def requires(role: str) -> Callable[..., Awaitable[Account]]:
    """A dependency: the caller's account, if its role may do what ``role`` may."""

    async def allowed(caller: Annotated[Account, Depends(account)]) -> Account:
        if not caller.may(role):
            raise Problem(403, f"this needs the {role} role; {caller.name} is {caller.role}")
        return caller

    return allowed
