"""A receipt applied to its message, on both backends: found by the provider's own id and
only that provider's, the provider's code kept on an undelivered message alone, and the
event keeping the code, the network and when the receipt came."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger.handover import record_sent
from ledger.messages import ReceiptOutcome, apply_in, apply_receipt, claim_batch
from ledger.schema import events, messages
from tests.ledger.test_claim_rules import events_of, launch, row_of
from tests.ledger.test_ledger import SPEC


def sent(engine, count: int = 3) -> list[int]:
    launch(engine, count=count, batch_size=count)
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{i}") for i, m in enumerate(claimed)])
    return [m.id for m in claimed]


def test_a_receipt_matches_its_providers_message_only(engine):
    one, two, _ = sent(engine)
    unmatched = apply_receipt(engine, "fallback", "P0", Status.DELIVERED, None)
    assert unmatched == ReceiptOutcome(matched=False, moved=False)
    assert row_of(engine, one).status == "sent"
    outcome = apply_receipt(engine, SPEC.provider, "P1", Status.UNDELIVERED, "001", "viettel")
    assert outcome == ReceiptOutcome(matched=True, moved=True)
    row = row_of(engine, two)
    assert (row.status, row.error_code) == ("undelivered", "001")
    assert row.final_at is not None and row.claim_token is None
    assert events_of(engine, two)[-1] == (
        SPEC.id,
        "receipt",
        "sent",
        "undelivered",
        "001",
        {"network": "viettel"},
    )
    late = apply_receipt(engine, SPEC.provider, "P1", Status.DELIVERED, "000")
    assert late == ReceiptOutcome(matched=True, moved=False)
    assert row_of(engine, two).status == "undelivered"


def test_a_delivered_message_keeps_no_code_but_its_event_does(engine):
    one, *_ = sent(engine)
    assert apply_receipt(engine, SPEC.provider, "P0", Status.DELIVERED, "000").moved
    assert row_of(engine, one).error_code is None
    assert events_of(engine, one)[-1] == (SPEC.id, "receipt", "sent", "delivered", "000", None)


@pytest.fixture
def vietnam_zone(monkeypatch):
    """The host's own zone is Vietnam's, as on a server in Hà Nội."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_receipt_applied_in_a_transaction_keeps_when_it_came(engine, vietnam_zone):
    one, two, three = sent(engine)
    came = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=7)))  # in UTC: 02:30
    with engine.begin() as conn:
        assert apply_in(conn, one, Status.DELIVERED, None, "mobifone", received_at=came)
        assert apply_in(conn, two, Status.UNDELIVERED, "005", received_at=came)
        assert apply_in(conn, three, Status.DELIVERED, None)
        assert not apply_in(conn, three, Status.DELIVERED, None)  # a duplicate
    assert events_of(engine, one)[-1][-1] == {
        "network": "mobifone",
        "received_at": "2026-03-01T02:30:00+00:00",
    }
    assert events_of(engine, two)[-1][-2:] == ("005", {"received_at": "2026-03-01T02:30:00+00:00"})
    assert events_of(engine, three)[-1][-1] is None
    with engine.connect() as conn:
        statuses = conn.execute(
            sa.select(messages.c.id, messages.c.status).order_by(messages.c.id)
        ).all()
        moves = conn.scalar(
            sa.select(sa.func.count()).where(events.c.source == "receipt").select_from(events)
        )
    assert [s for _, s in statuses] == ["delivered", "undelivered", "delivered"]
    assert moves == 3
