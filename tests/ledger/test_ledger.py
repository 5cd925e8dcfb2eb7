"""The ledger on both backends: schema, claims, status moves, all-or-nothing intake."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from campaigns.plan import Planner
from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from campaigns.status import Status
from ledger.handover import record_sent
from ledger.intake import record_campaign
from ledger.messages import apply_receipt, claim_batch, record_outcome, release
from ledger.schema import campaigns, events, messages, metadata
from ledger.summary import status_counts
from tests.helpers import chunked

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml")


def rows(count: int) -> list[ListRow]:
    return [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(count)]


def launch(engine, count: int = 10, batch_size: int = 5) -> None:
    planner = Planner(SPEC)
    record_campaign(
        engine,
        SPEC,
        "list.csv",
        [],
        lambda: planner.summary,
        chunked(planner.plan(rows(count))),
        batch_size,
    )


def history(engine, message_id: int) -> list[tuple[str | None, str | None]]:
    query = sa.select(events.c.from_status, events.c.to_status).where(
        events.c.message_id == message_id
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by(events.c.id))]


def status_of(engine, message_id: int) -> str:
    with engine.connect() as conn:
        return conn.scalar(sa.select(messages.c.status).where(messages.c.id == message_id))


def test_migrations_create_exactly_the_schema_the_code_uses(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_batch_is_claimed_once(engine):
    launch(engine)
    first = claim_batch(engine, SPEC.id, 1)
    assert len(first) == 5 and all(m.attempts == 1 for m in first)
    assert claim_batch(engine, SPEC.id, 1) == []
    assert history(engine, first[0].id) == [("queued", "sending")]


def test_concurrent_claims_never_share_a_row(engine):
    launch(engine, count=200, batch_size=200)
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claim():
        barrier.wait()
        results.append([m.id for m in claim_batch(engine, SPEC.id, 1)])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)) == 200


def test_receipts_move_forward_only(engine):
    launch(engine)
    one, two, three = claim_batch(engine, SPEC.id, 1)[:3]

    # A receipt overtakes the send's answer: delivered stays, the provider id is kept.
    record_sent(engine, SPEC.id, [(one.id, "P1")])
    assert apply_receipt(engine, SPEC.provider, "P1", Status.DELIVERED, "000").moved
    assert not apply_receipt(
        engine, SPEC.provider, "P1", Status.DELIVERED, "000"
    ).moved  # duplicate
    assert not apply_receipt(engine, SPEC.provider, "P1", Status.UNDELIVERED, "001").moved  # late
    record_sent(engine, SPEC.id, [(one.id, "P1")])
    assert status_of(engine, one.id) == "delivered"
    assert history(engine, one.id) == [
        ("queued", "sending"),
        ("sending", "sent"),
        ("sent", "delivered"),
    ]

    # A correction from unknown to a real outcome is allowed and recorded.
    record_outcome(engine, two.id, Status.UNKNOWN, "worker", "read_timeout")
    with engine.begin() as conn:
        conn.execute(
            messages.update().where(messages.c.id == two.id).values(provider_message_id="P2")
        )
    assert apply_receipt(engine, SPEC.provider, "P2", Status.DELIVERED, None).moved
    assert status_of(engine, two.id) == "delivered"

    # A receipt for an id nobody recorded is reported as unmatched.
    assert not apply_receipt(engine, SPEC.provider, "nobody", Status.DELIVERED, None).matched

    # Released rows go back to the queue and can be claimed again.
    assert release(engine, [three.id], "0x58") == 1
    assert status_of(engine, three.id) == "queued"


def test_a_receipt_naming_the_real_network_keeps_it_in_the_event(engine):
    from ledger.schema import events

    launch(engine)
    (one,) = claim_batch(engine, SPEC.id, 1)[:1]
    record_sent(engine, SPEC.id, [(one.id, "P1")])
    assert apply_receipt(engine, SPEC.provider, "P1", Status.DELIVERED, None, "mobifone").moved
    with engine.connect() as conn:
        (detail,) = conn.execute(
            sa.select(events.c.detail).where(
                events.c.message_id == one.id, events.c.to_status == "delivered"
            )
        ).scalars()
    assert detail == {"network": "mobifone"}


def test_a_list_that_breaks_halfway_leaves_nothing(engine):
    planner = Planner(SPEC)

    def broken():  # the first chunk is written, then reading the list fails
        yield from chunked(planner.plan(rows(3000)))
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    with pytest.raises(UnicodeDecodeError):
        record_campaign(engine, SPEC, "list.csv", [], lambda: planner.summary, broken(), 100)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 0
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0


def test_launching_twice_adds_nothing(engine):
    launch(engine, count=10)
    launch(engine, count=20)
    assert sum(status_counts(engine, SPEC.id).values()) == 10
