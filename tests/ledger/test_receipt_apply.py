"""What an applied receipt writes (``ledger.receipts`` in bulk, by the rules of
``campaigns.status``): the message's status, code, final and update times, its claim
given up; one event per move, saying when the receipt arrived in UTC whatever the
server's zone; nothing for the messages no receipt named. And on PostgreSQL, drainers
share the inbox: a pass skips receipts another holds and never waits for a campaign's
row."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger import receipts as inbox_module
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.receipts import drain, store
from ledger.schema import campaigns, events, messages, receipts
from tests.ledger.receipt_scenes import SPEC, T0, Clock, claimed, inbox, receipt, sent, statuses

LATER = T0 + timedelta(minutes=3)


@pytest.fixture
def vietnam_server():
    """The process runs in Vietnam's zone (UTC+7), as a server there may."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Ho_Chi_Minh"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _message(engine, message_id: int) -> dict:
    query = sa.select(
        messages.c.status,
        messages.c.error_code,
        messages.c.final_at,
        messages.c.updated_at,
        messages.c.claim_token,
    ).where(messages.c.id == message_id)
    with engine.connect() as conn:
        return dict(conn.execute(query).one()._mapping)


def _receipt_events(engine) -> list[dict]:
    query = (
        sa.select(
            events.c.campaign_id,
            events.c.message_id,
            events.c.at,
            events.c.from_status,
            events.c.to_status,
            events.c.code,
            events.c.detail,
        )
        .where(events.c.source == "receipt")
        .order_by(events.c.id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def test_an_undelivered_receipt_writes_its_code_and_ends_the_message(
    engine, monkeypatch, vietnam_server
):
    ids = sent(engine, ["P1", "P2", "P3"])
    clock = Clock(T0)
    monkeypatch.setattr(inbox_module, "now", clock)
    # Stored by an older version: a code longer than the message's column (32).
    store(engine, [receipt("P1", Status.UNDELIVERED, code="E" * 40, network="viettel")])
    store(engine, [receipt("P2", Status.DELIVERED, code="000")])
    clock.advance(LATER - T0)
    assert drain(engine, 10)["applied"] == 2
    undelivered, delivered, untouched = (_message(engine, ids[p]) for p in ("P1", "P2", "P3"))
    assert undelivered == {
        "status": "undelivered",
        "error_code": "E" * 32,  # cut to its column; the event keeps it whole
        "final_at": LATER,
        "updated_at": LATER,
        "claim_token": None,
    }
    # A code explains an undelivered message only.
    assert (delivered["status"], delivered["error_code"], delivered["final_at"]) == (
        "delivered",
        None,
        LATER,
    )
    assert untouched["status"] == "sent" and untouched["final_at"] is None
    arrived = "2024-03-08T09:30:00+00:00"  # T0, in UTC although the server is at UTC+7
    assert _receipt_events(engine) == [
        {
            "campaign_id": SPEC.id,
            "message_id": ids["P1"],
            "at": LATER,
            "from_status": "sent",
            "to_status": "undelivered",
            "code": "E" * 40,
            "detail": {"received_at": arrived, "network": "viettel"},
        },
        {
            "campaign_id": SPEC.id,
            "message_id": ids["P2"],
            "at": LATER,
            "from_status": "sent",
            "to_status": "delivered",
            "code": "000",
            "detail": {"received_at": arrived},  # no network named, none written
        },
    ]


def test_a_sent_receipt_for_a_claimed_message_gives_up_the_claim_and_ends_nothing(
    engine, monkeypatch
):
    """A message claimed again (its id kept from an earlier attempt) gets the provider's
    ``sent``: it leaves ``sending``, so it holds no claim, and it is not final."""
    (message_id,) = claimed(engine, 1)
    with engine.begin() as conn:
        conn.execute(
            messages.update().where(messages.c.id == message_id).values(provider_message_id="P1")
        )
    assert _message(engine, message_id)["claim_token"] is not None
    monkeypatch.setattr(inbox_module, "now", Clock(LATER))
    store(engine, [receipt("P1", Status.SENT)])
    assert drain(engine, 10)["applied"] == 1
    assert _message(engine, message_id) == {
        "status": "sent",
        "error_code": None,
        "final_at": None,
        "updated_at": LATER,
        "claim_token": None,
    }
    assert [(e["from_status"], e["to_status"]) for e in _receipt_events(engine)] == [
        ("sending", "sent")
    ]


@pytest.fixture
def pg_ledger(postgres_url):
    """A PostgreSQL ledger, and a second engine for the drainer whose waits for a lock
    end in an error after 3 s (a pass that should not wait fails instead of hanging)."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    drainer = make_engine(postgres_url)

    @sa.event.listens_for(drainer, "connect")
    def impatient(dbapi_connection, record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")

    yield engine, drainer
    drainer.dispose()
    engine.dispose()


@pytest.mark.postgres
def test_a_pass_skips_receipts_another_drainer_holds(pg_ledger):
    engine, drainer = pg_ledger
    ids = sent(engine, ["P1", "P2"])
    store(engine, [receipt(pid, Status.DELIVERED) for pid in ids])
    with engine.connect() as other:
        other.execute(
            sa.select(receipts.c.id).where(receipts.c.provider_message_id == "P1").with_for_update()
        ).one()
        assert drain(drainer, 10)["applied"] == 1  # P2 only: P1 is the other's
        other.rollback()
    assert [(pid, state) for pid, state, _ in inbox(engine)] == [
        ("P1", "pending"),
        ("P2", "applied"),
    ]
    assert drain(drainer, 10)["applied"] == 1  # released: taken by the next pass
    assert set(statuses(engine).values()) == {"delivered"}


@pytest.mark.postgres
def test_a_pass_never_waits_for_its_campaigns_row(pg_ledger):
    """An operator pausing the campaign holds its row: receipts still apply."""
    engine, drainer = pg_ledger
    ids = sent(engine, ["P1"])
    store(engine, [receipt("P1", Status.DELIVERED)])
    with engine.connect() as operator:
        operator.execute(campaigns.update().where(campaigns.c.id == SPEC.id).values(state="paused"))
        assert drain(drainer, 10)["applied"] == 1
        operator.rollback()
    assert statuses(engine) == {ids["P1"]: "delivered"}
