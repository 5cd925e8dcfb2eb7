"""Forward only, on the path receipts really take: the webhook stores each receipt in the
ledger's inbox, and the drainer (``ledger.receipts.drain_all``, run by the webhook's
``Drainer`` thread and the housekeeper) applies them in bulk. A provider may send a
``sent`` after its ``delivered`` (it retries callbacks, and they overtake each other), and
a carrier may report ``undelivered`` for a message it delivered: a delivered message is
final, so such a receipt is kept (``ignored``) and moves nothing, on both ledgers.

What the bulk path records for a refused move, as ``ledger.receipts._apply`` intends: no
event (only moves are events), the receipt ``ignored`` with the time it was looked at,
and the message untouched (status, error code, when it became final).
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.receipts import drain_all
from ledger.schema import events, messages, receipts
from tests.worker.test_webhook import sent_campaign, twilio_post, webhook

UNDELIVERED = {"MessageStatus": "undelivered", "ErrorCode": "30003"}  # handset unreachable


def _receipt_moves(engine) -> dict[str, list[tuple[str, str, str | None]]]:
    """Per provider id, the (from, to, code) of every receipt event, in order."""
    query = (
        sa.select(
            messages.c.provider_message_id, events.c.from_status, events.c.to_status, events.c.code
        )
        .join(messages, messages.c.id == events.c.message_id)
        .where(events.c.source == "receipt")
        .order_by(events.c.id)
    )
    moves: dict[str, list[tuple[str, str, str | None]]] = {}
    with engine.connect() as conn:
        for provider_id, old, new, code in conn.execute(query):
            moves.setdefault(provider_id, []).append((old, new, code))
    return moves


def _messages(engine) -> dict[str, tuple]:
    """Per provider id: status, error code, when it became final."""
    query = sa.select(
        messages.c.provider_message_id,
        messages.c.status,
        messages.c.error_code,
        messages.c.final_at,
    )
    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def _inbox(engine) -> list[tuple[str, str, bool]]:
    """Each stored receipt, in the order received: its id, state, and whether it was
    looked at (``applied_at`` set)."""
    query = sa.select(
        receipts.c.provider_message_id, receipts.c.state, receipts.c.applied_at.is_not(None)
    ).order_by(receipts.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_late_receipts_on_a_later_pass_leave_a_delivered_message_delivered(engine, tmp_path):
    """Delivered, drained; then a late ``sent`` and a late ``undelivered`` arrive and are
    drained on a later pass: both are ignored."""
    sent_campaign(engine, "intl", ["SM1", "SM2"])
    with webhook(engine, tmp_path) as (base, _):
        for sid in ("SM1", "SM2"):
            assert twilio_post(base, {"MessageSid": sid, "MessageStatus": "delivered"})[0] == 200
        first = drain_all(engine)
        assert (first["applied"], first["ignored"]) == (2, 0)
        delivered = _messages(engine)
        assert {sid: row[:2] for sid, row in delivered.items()} == {
            "SM1": ("delivered", None),
            "SM2": ("delivered", None),
        }
        assert twilio_post(base, {"MessageSid": "SM1", "MessageStatus": "sent"})[0] == 200
        assert twilio_post(base, {"MessageSid": "SM2", **UNDELIVERED})[0] == 200
        late = drain_all(engine)
    assert (late["applied"], late["ignored"]) == (0, 2)
    assert _messages(engine) == delivered  # status, code and final time all unchanged
    assert _receipt_moves(engine) == {
        "SM1": [("sent", "delivered", None)],
        "SM2": [("sent", "delivered", None)],
    }
    assert _inbox(engine) == [
        ("SM1", "applied", True),
        ("SM2", "applied", True),
        ("SM1", "ignored", True),
        ("SM2", "ignored", True),
    ]


def test_late_receipts_in_the_same_pass_are_held_to_the_move_before_them(engine, tmp_path):
    """The drainer was away: ``delivered`` and the late ones behind it wait in the inbox
    together and are applied in one pass, in the order received. Each is judged against
    the status the receipt before it left, not the one read at the start of the pass."""
    sent_campaign(engine, "intl", ["SM1", "SM2"])
    with webhook(engine, tmp_path) as (base, _):
        for fields in (
            {"MessageSid": "SM1", "MessageStatus": "delivered"},
            {"MessageSid": "SM2", "MessageStatus": "delivered"},
            {"MessageSid": "SM1", "MessageStatus": "sent"},
            {"MessageSid": "SM2", **UNDELIVERED},
        ):
            assert twilio_post(base, fields)[0] == 200
        assert [state for _, state, _ in _inbox(engine)] == ["pending"] * 4
        counts = drain_all(engine)
    assert (counts["applied"], counts["ignored"]) == (2, 2)
    assert {sid: row[:2] for sid, row in _messages(engine).items()} == {
        "SM1": ("delivered", None),
        "SM2": ("delivered", None),
    }
    assert _receipt_moves(engine) == {
        "SM1": [("sent", "delivered", None)],
        "SM2": [("sent", "delivered", None)],
    }
    assert _inbox(engine) == [
        ("SM1", "applied", True),
        ("SM2", "applied", True),
        ("SM1", "ignored", True),
        ("SM2", "ignored", True),
    ]
