"""One number's history across campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from scripts.api.common import Limit, Offset, Reader, Served
from scripts.api.problems import Problem
from worker.web.auth_throttle import AuthThrottle

router = APIRouter(tags=["recipients"])


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
    next: int | None = None


def lookups() -> AuthThrottle:
    """History lookups of a role that sees masked numbers, slowed per account: 30 at once,
    then one every 10 s (one per app: ``app.state.lookups``). Whether a number has
    messages is an answer too: unthrottled, an auditor would try each of the 100,000
    numbers behind a mask (``+8494*****18``) in minutes and hold the whole number."""
    return AuthThrottle(burst=30, every=10.0)


@router.get("/v1/recipients/{number}/history", response_model=RecipientHistory)
def recipient_history(
    number: str,
    caller: Reader,
    runtime: Served,
    request: Request,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RecipientHistory:
    """Every message to one number across campaigns (newest campaign first, a page of
    them), each with its status, provider, receipt times and events. For a role that
    sees masked numbers, 30 lookups, then one every 10 s (429 and ``Retry-After``)."""
    import math

    from campaigns.phones import mask
    from ledger.history import history

    phone = textable(number, "path.number")
    whole = caller.may("operator")  # an auditor never sees a whole number
    if not whole:
        wait = request.app.state.lookups.take(f"history:{caller.name}")
        if wait > 0:
            raise Problem(429, "too many numbers looked up; wait", "throttled",
                          retry_after=math.ceil(wait))  # fmt: skip
    found = history(runtime.engine, phone, runtime.settings.retention_secret(), limit + 1, offset)
    return RecipientHistory(
        number=phone if whole else mask(phone),
        masked=not whole,
        messages=[message.as_dict() for message in found.messages[:limit]],
        complete=found.complete,
        unsearchable=found.unsearchable,
        next=offset + limit if len(found.messages) > limit else None,
    )


def textable(number: str, where: str) -> str:
    """``number`` in E.164, as a list would have it (``ledger``'s key).

    Raises:
        Problem: 422 naming ``where`` when it is no textable number.
    """
    from campaigns.phones import PhoneRejected, normalise

    try:
        return normalise(number).e164
    except PhoneRejected as rejected:
        raise Problem(
            422,
            f"{where}: not a textable number ({rejected.reason.value})",
            "invalid-input",
            errors=[{"where": where, "what": rejected.reason.value}],
        ) from None
