"""One number's history across campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from scripts.api.common import Limit, Offset, Reader, Served
from scripts.api.problems import Problem

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


@router.get("/v1/recipients/{number}/history", response_model=RecipientHistory)
def recipient_history(
    number: str, caller: Reader, runtime: Served, limit: Limit = 50, offset: Offset = 0
) -> RecipientHistory:
    """Every message to one number across campaigns (newest campaign first, a page of
    them), each with its status, provider, receipt times and events."""
    from campaigns.phones import mask
    from ledger.history import history

    phone = textable(number, "path.number")
    key = runtime.settings.retention_key
    secret = key.get_secret_value() if key else None
    found = history(runtime.engine, phone, secret, limit + 1, offset)
    whole = caller.may("operator")  # an auditor never sees a whole number
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
