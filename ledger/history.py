"""Every message the ledger holds for one number, across campaigns (``loa recipient
history``), with each message's events (claims, the provider's answers, receipts).

A message keeps its recipient's whole number (E.164) until retention replaces it by a
keyed HMAC (``ledger.retention.pseudonym``). So a number is looked up twice: as itself,
and, when the retention key is known, as its HMAC under that key. Without the key, the
messages retention has already reached cannot be found; ``History.unsearchable`` names
the campaigns that hold any, so that "no messages" is never said where the answer is
only "not without the key". (A number whose messages were retained under an earlier key
is found only with that key.)

Each lookup goes campaign by campaign through the messages' unique index on
``(campaign_key, recipient)``, and the campaigns holding retained messages are found in
the partial index of those (``ix_messages_retained``): no scan of the messages table,
however large.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.retention import pseudonym
from ledger.schema import RETAINED, campaigns, events, messages


@dataclass(frozen=True)
class MessageEvent:
    """One event of a message: when (UTC-aware), who moved it (``source``: worker,
    receipt, finaliser, operator, reaper …), from and to which status, the provider's raw
    code and the event's detail (the serving network of a receipt, a provider move …)."""

    at: datetime
    source: str
    from_status: str | None
    to_status: str | None
    code: str | None
    detail: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the time as ISO 8601 in UTC."""
        return {
            "at": self.at.isoformat(),
            "source": self.source,
            "from": self.from_status,
            "to": self.to_status,
            "code": self.code,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class HistoryMessage:
    """One message to the number. ``created_at`` is its campaign's launch (a list's
    messages are all written then; ``None`` for a welcome of an arrivals campaign, which
    joins it later and keeps no time of its own but its events'). ``matched_by``:
    ``number`` (the whole number is still there) or ``hmac`` (found by its pseudonym,
    after retention)."""

    id: int
    campaign_id: str
    campaign_name: str
    status: str
    provider: str
    parts: int
    attempts: int
    error_code: str | None
    provider_message_id: str | None
    created_at: datetime | None
    sent_at: datetime | None
    final_at: datetime | None
    matched_by: str
    events: list[MessageEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with its events: times as ISO 8601 in UTC (``None``: not yet)."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "message_id": self.id,
            "campaign": self.campaign_id,
            "name": self.campaign_name,
            "status": self.status,
            "provider": self.provider,
            "parts": self.parts,
            "attempts": self.attempts,
            "error_code": self.error_code,
            "provider_message_id": self.provider_message_id,
            "created_at": iso(self.created_at),
            "sent_at": iso(self.sent_at),
            "final_at": iso(self.final_at),
            "matched_by": self.matched_by,
            "events": [event.as_dict() for event in self.events],
        }


@dataclass(frozen=True)
class History:
    """The messages found (newest campaign first), whether the HMAC was searched too, and
    the campaigns holding retained messages that could not be searched (no key)."""

    messages: list[HistoryMessage]
    searched_hmac: bool
    unsearchable: list[str]

    @property
    def complete(self) -> bool:
        """Whether every message to the number is in ``messages``."""
        return not self.unsearchable


def history(
    engine: Engine, e164: str, key: str | None, limit: int | None = None, offset: int = 0
) -> History:
    """The messages to ``e164`` (a normalised number) in every campaign, newest campaign
    first, with their events; also those whose number retention replaced, when ``key``
    (the retention key, ``LOA_RETENTION_KEY``) is given. ``limit`` messages at most after
    the first ``offset`` (a page; all of them by default)."""
    hashed = pseudonym(key, e164) if key else None
    wanted = [e164] if hashed is None else [e164, hashed]
    # Each campaign's messages by the unique (campaign_key, recipient) index: the keys
    # given as a list to look up (a plain join let SQLite scan every message instead).
    query = (
        sa.select(
            messages.c.id,
            campaigns.c.id.label("campaign_id"),
            campaigns.c.name,
            campaigns.c.list_name,
            campaigns.c.created_at,
            messages.c.recipient,
            messages.c.status,
            messages.c.provider,
            messages.c.parts,
            messages.c.attempts,
            messages.c.error_code,
            messages.c.provider_message_id,
            messages.c.sent_at,
            messages.c.final_at,
        )
        .join(campaigns, messages.c.campaign_key == campaigns.c.key)
        .where(
            messages.c.campaign_key.in_(sa.select(campaigns.c.key)),
            messages.c.recipient.in_(wanted),
        )
        .order_by(campaigns.c.created_at.desc(), campaigns.c.key.desc(), messages.c.id)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        moves: dict[int, list[MessageEvent]] = {row.id: [] for row in rows}
        if moves:
            for event in conn.execute(
                sa.select(
                    events.c.message_id,
                    events.c.at,
                    events.c.source,
                    events.c.from_status,
                    events.c.to_status,
                    events.c.code,
                    events.c.detail,
                )
                .where(events.c.message_id.in_(list(moves)))
                .order_by(events.c.id)
            ):
                moves[event.message_id].append(MessageEvent(*event[1:]))
        unsearchable = [] if hashed else _with_retained(conn)
    found = [
        HistoryMessage(
            id=row.id,
            campaign_id=row.campaign_id,
            campaign_name=row.name,
            status=row.status,
            provider=row.provider,
            parts=row.parts,
            attempts=row.attempts,
            error_code=row.error_code,
            provider_message_id=row.provider_message_id,
            created_at=None if row.list_name == "arrivals" else row.created_at,
            sent_at=row.sent_at,
            final_at=row.final_at,
            matched_by="number" if row.recipient == e164 else "hmac",
            events=moves[row.id],
        )
        for row in rows
    ]
    return History(found, searched_hmac=hashed is not None, unsearchable=unsearchable)


def _with_retained(conn: sa.Connection) -> list[str]:
    """The campaigns (newest first) holding a message whose number retention replaced."""
    return list(conn.scalars(retained_campaigns()))


def retained_campaigns() -> sa.Select[tuple[str]]:
    """The query of the campaigns (newest first) holding a message whose number retention
    replaced: each asked of the partial index of those messages (``ix_messages_retained``,
    its predicate ``RETAINED`` written here as it is there), never of all its messages."""
    retained = (
        sa.select(messages.c.id)
        .where(messages.c.campaign_key == campaigns.c.key, sa.text(f"messages.{RETAINED}"))
        .exists()
    )
    return (
        sa.select(campaigns.c.id)
        .where(retained)
        .order_by(campaigns.c.created_at.desc(), campaigns.c.key.desc())
    )
