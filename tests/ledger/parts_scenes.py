"""Scenes for the tests of messages sent as several submissions (``ledger.parts``): such
messages recorded with their parts' ids, and what the ledger then holds of them."""

from __future__ import annotations

import sqlalchemy as sa

from campaigns.spec import CampaignSpec
from ledger.handover import record_sent
from ledger.schema import events, message_parts, messages
from tests.ledger.receipt_scenes import SPEC, claimed


def sent_in_parts(
    engine, parts: list[list[str]], spec: CampaignSpec = SPEC, first: int = 0
) -> list[int]:
    """Messages of a new campaign the provider took as the parts given (each message's
    part ids, in order: a single id is a message sent whole): their message ids, in the
    same order."""
    message_ids = claimed(engine, len(parts), spec, first)
    sent = [(m, ids[0]) for m, ids in zip(message_ids, parts, strict=True)]
    record_sent(engine, spec.id, sent, dict(zip(message_ids, parts, strict=True)))
    return message_ids


def parts_of(engine, message_id: int) -> list[tuple[int, str, str | None, str | None]]:
    """A message's parts in order: number, provider id, status, code."""
    query = (
        sa.select(
            message_parts.c.part,
            message_parts.c.provider_message_id,
            message_parts.c.status,
            message_parts.c.code,
        )
        .where(message_parts.c.message_id == message_id)
        .order_by(message_parts.c.part)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def message(engine, message_id: int) -> tuple[str, str | None]:
    """A message's status and error code."""
    query = sa.select(messages.c.status, messages.c.error_code).where(messages.c.id == message_id)
    with engine.connect() as conn:
        return tuple(conn.execute(query).one())  # type: ignore[return-value]


def receipt_events(engine, message_id: int) -> list[tuple[str, str, str | None, dict | None]]:
    """The receipt events of a message, in order: from, to, code, detail."""
    query = (
        sa.select(events.c.from_status, events.c.to_status, events.c.code, events.c.detail)
        .where(events.c.message_id == message_id, events.c.source == "receipt")
        .order_by(events.c.id)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
