"""The operator's own actions in the log: who did what (issue #21). A launch, pause,
resume, cancel, a provider resumed, a suppression list changed, a retention run: each is
an event, sealed like every other, whose ``detail`` says the ``action`` and who took it
(``by``: the OS user and host, as ``user@host``), so an auditor reading the log sees the
hand behind each change, not only its effect.

An action on one campaign is that campaign's event; one on the whole ledger (a list, a
retention run, a provider) carries ``LEDGER`` as its campaign, a name no campaign can
have (campaign ids are ``a-z 0-9 . _ -``). Details never hold a phone number: a list
change says how many numbers, not which.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy.engine import Connection

from ledger.schema import events, now

#: The campaign id of an action on the whole ledger.
LEDGER = "*"


#: Who acts when it is not this process's OS user: an API account (``api:NAME``), set for
#: the length of one request (``scripts.api``); contextvars follow a request into the
#: thread that serves it.
ACTING_AS: ContextVar[str | None] = ContextVar("acting_as", default=None)


def actor() -> str | None:
    """Who acts: the API account a request acts for (``api:NAME``), else the OS user and
    host (``user@host``); ``None`` when the system cannot tell (no login name, no passwd
    entry for the uid)."""
    import getpass
    import socket

    if ACTING_AS.get() is not None:
        return ACTING_AS.get()

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return None


def record_action(conn: Connection, action: str, campaign_id: str = LEDGER, **detail: Any) -> int:
    """Write the event of an operator's ``action`` in the caller's transaction, with its
    ``detail`` (counts, names; never a number) and who took it. Returns the event's id."""
    inserted = conn.execute(
        events.insert().values(
            campaign_id=campaign_id,
            at=now(),
            source="operator",
            detail={"action": action, "by": actor(), **detail},
        )
    )
    return int(inserted.inserted_primary_key[0])
