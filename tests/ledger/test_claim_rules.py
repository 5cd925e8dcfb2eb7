"""Claims and the moves that end them, on both backends: what a claim marks on its rows
and hands the worker, what a release or an outcome leaves on the row and in its events,
and how a cancel reaches what waits and what is given back later."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.audit.actions import actor
from ledger.handover import mark_handed, record_sent
from ledger.messages import cancel_campaign, claim_batch, record_outcome, release
from ledger.schema import campaigns, events, messages, now
from tests.helpers import record
from tests.ledger.test_ledger import SPEC

COLUMNS = ["STT", "Họ và tên", "Huyện/Thành phố"]


def launch(engine, count: int = 6, batch_size: int = 3, spec=SPEC) -> None:
    rows = [
        ListRow(row=i + 2, phone=f"09123{i:05d}", values=(str(i), f"Khách {i}", "Ninh Hải"))
        for i in range(count)
    ]
    record(engine, spec, rows, COLUMNS, batch_size=batch_size)


def row_of(engine, message_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()


def events_of(engine, message_id: int) -> list[tuple]:
    """Each event of the message: (campaign, source, from, to, code, detail)."""
    query = (
        sa.select(
            events.c.campaign_id,
            events.c.source,
            events.c.from_status,
            events.c.to_status,
            events.c.code,
            events.c.detail,
        )
        .where(events.c.message_id == message_id)
        .order_by(events.c.id)
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def test_a_claim_marks_its_rows_and_hands_the_worker_what_the_list_said(engine):
    launch(engine)
    own_validity = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    with engine.begin() as conn:  # a welcome's own validity, shorter than its campaign's
        first = conn.scalar(sa.select(sa.func.min(messages.c.id)))
        conn.execute(
            messages.update().where(messages.c.id == first).values(valid_until=own_validity)
        )
    before = now()
    claimed = claim_batch(engine, SPEC.id, 1, token="a" * 32)
    after = now()

    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(
                messages.c.id,
                messages.c.recipient,
                messages.c.language,
                messages.c.encoding,
                messages.c.parts,
            )
            .where(messages.c.batch == 1)
            .order_by(messages.c.id)
        ).all()
    assert [(m.id, m.recipient, m.language, m.encoding, m.parts) for m in claimed] == [
        tuple(r) for r in stored
    ]
    assert [m.fields for m in claimed] == [(str(i), f"Khách {i}", "Ninh Hải") for i in range(3)]
    assert [m.valid_until for m in claimed] == [own_validity, None, None]
    assert [m.attempts for m in claimed] == [1, 1, 1]
    for message in claimed:
        row = row_of(engine, message.id)
        assert (row.status, row.claim_token, row.attempts) == ("sending", "a" * 32, 1)
        assert before <= row.claimed_at <= after and row.updated_at == row.claimed_at
        assert events_of(engine, message.id) == [
            (SPEC.id, "worker", "queued", "sending", None, {"provider": "sandbox"})
        ]
    with engine.connect() as conn:
        at = conn.scalars(sa.select(events.c.at).where(events.c.to_status == "sending")).all()
    assert at == [row_of(engine, claimed[0].id).claimed_at] * 3
    assert row_of(engine, claimed[-1].id + 1).status == "queued"  # batch 2 waits


def test_a_claim_again_starts_clean_and_without_a_token_gets_a_fresh_one(engine):
    launch(engine, count=3)
    first = claim_batch(engine, SPEC.id, 1)
    tokens = {row_of(engine, m.id).claim_token for m in first}
    assert len(tokens) == 1 and len(next(iter(tokens))) == 32
    assert {m.claim for m in first} == tokens  # each message knows its claim
    mark_handed(
        engine, [first[0].id], first[0].claim
    )  # it may have gone out, then the provider said no
    assert release(engine, [m.id for m in first], code="0x58") == 3
    assert row_of(engine, first[0].id).error_code == "0x58"

    again = claim_batch(engine, SPEC.id, 1)
    assert [m.attempts for m in again] == [2, 2, 2]  # the release did not refund
    rows = [row_of(engine, m.id) for m in again]
    assert {r.error_code for r in rows} == {None}  # this attempt has no code yet
    assert {r.handed_at for r in rows} == {None}  # not handed in this claim
    assert {r.claim_token for r in rows}.isdisjoint(tokens) and len(
        {r.claim_token for r in rows}
    ) == 1


def test_a_claim_for_one_provider_takes_only_its_rows(engine):
    launch(engine, count=3, batch_size=3)
    with engine.begin() as conn:  # a halt moved the last one to a fallback provider
        last = conn.scalar(sa.select(sa.func.max(messages.c.id)))
        conn.execute(messages.update().where(messages.c.id == last).values(provider="fallback"))
    own = claim_batch(engine, SPEC.id, 1, provider="sandbox")
    assert [m.id for m in own] == [last - 2, last - 1]
    assert row_of(engine, last).status == "queued"
    assert [m.id for m in claim_batch(engine, SPEC.id, 1, provider="fallback")] == [last]


def test_a_claim_in_another_campaign_takes_nothing_of_this_one(engine):
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    launch(engine, count=3)
    claimed = claim_batch(engine, SPEC.id, 1)
    assert {row_of(engine, m.id).campaign_key for m in claimed} == {
        row_of(engine, claimed[0].id).campaign_key
    }
    assert len(claimed) == 3
    assert [e[0] for m in claimed for e in events_of(engine, m.id)] == [SPEC.id] * 3
    assert len(claim_batch(engine, other.id, 1)) == 3


def test_a_claim_on_postgresql_is_one_statement(engine):
    """The hot path's promise: one round trip a claim on PostgreSQL (several on SQLite)."""
    launch(engine, count=3)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert len(claim_batch(engine, SPEC.id, 1)) == 3
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    if engine.dialect.name == "postgresql":
        assert len(statements) == 1
    else:
        assert len(statements) > 1


def test_a_release_gives_back_only_what_is_still_claimed(engine):
    launch(engine, count=3)
    one, two, three = claim_batch(engine, SPEC.id, 1, token="b" * 32)
    record_sent(engine, SPEC.id, [(three.id, "P3")])  # the provider took this one
    assert release(engine, [one.id, two.id, three.id], code="http_503", refund=True) == 2
    for message in (one, two):
        row = row_of(engine, message.id)
        assert (row.status, row.attempts, row.error_code) == ("queued", 0, "http_503")
        assert (row.claim_token, row.final_at) == (None, None)
        assert events_of(engine, message.id)[-1] == (
            SPEC.id,
            "worker",
            "sending",
            "queued",
            "http_503",
            None,
        )
    assert row_of(engine, three.id).status == "sent"
    assert release(engine, [one.id]) == 0  # queued already: nothing to give back


def test_an_outcome_ends_the_claim_and_keeps_its_code(engine):
    launch(engine, count=3)
    one, two, three = claim_batch(engine, SPEC.id, 1, token="c" * 32)
    assert record_outcome(engine, one.id, Status.FAILED, "worker", "invalid_number")
    row = row_of(engine, one.id)
    assert (row.status, row.error_code, row.claim_token) == ("failed", "invalid_number", None)
    assert row.final_at is not None and row.final_at == row.updated_at
    assert events_of(engine, one.id)[-1] == (
        SPEC.id,
        "worker",
        "sending",
        "failed",
        "invalid_number",
        None,
    )
    assert not record_outcome(engine, one.id, Status.SENT, "worker")  # final stays final
    assert not record_outcome(engine, one.id + 1000, Status.FAILED, "worker")  # no such row

    # With a claim, only while the row is under it.
    assert not record_outcome(engine, two.id, Status.UNKNOWN, "reaper", "x", claim="d" * 32)
    assert row_of(engine, two.id).status == "sending"
    assert record_outcome(engine, two.id, Status.UNKNOWN, "reaper", "x", claim="c" * 32)
    assert row_of(engine, two.id).status == "unknown"

    # An outcome short of final keeps no final time, and sent is not the end of the claim's
    # story: the row keeps no token either way once it leaves sending.
    assert record_outcome(engine, three.id, Status.SENT, "worker")
    row = row_of(engine, three.id)
    assert (row.status, row.final_at, row.claim_token, row.error_code) == (
        "sent",
        None,
        None,
        None,
    )


def test_a_cancel_ends_what_waits_and_only_in_its_own_campaign(engine):
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    launch(engine, count=6, batch_size=3)
    in_flight = claim_batch(engine, SPEC.id, 1)
    before = now()
    assert cancel_campaign(engine, SPEC.id) == 3  # batch 2; batch 1 goes on to its end
    with engine.connect() as conn:
        state = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.state)).all())
        waiting = conn.execute(
            sa.select(messages)
            .join(campaigns, campaigns.c.key == messages.c.campaign_key)
            .where(campaigns.c.id == SPEC.id, messages.c.batch == 2)
        ).all()
        logged = conn.execute(
            sa.select(events.c.source, events.c.detail).where(
                events.c.campaign_id == SPEC.id, events.c.message_id.is_(None)
            )
        ).all()
    assert state == {SPEC.id: "cancelled", other.id: "running"}
    for row in waiting:
        assert (row.status, row.error_code) == ("cancelled", "campaign_cancelled")
        assert row.final_at == row.updated_at and row.final_at >= before
        assert events_of(engine, row.id) == [
            (SPEC.id, "operator", "queued", "cancelled", "campaign_cancelled", None)
        ]
    assert logged[-1] == ("operator", {"state": "cancelled", "cancelled": 3, "by": actor()})
    assert {row_of(engine, m.id).status for m in in_flight} == {"sending"}
    assert len(claim_batch(engine, other.id, 1)) == 3  # the other campaign still sends

    # What the cancelled campaign had in flight: given back, it ends cancelled (the refund
    # no longer matters); an outcome from the provider is kept as it is.
    assert record_outcome(engine, in_flight[0].id, Status.FAILED, "worker", "0x0b")
    assert release(engine, [m.id for m in in_flight[1:]], code="http_503", refund=True) == 2
    assert row_of(engine, in_flight[0].id).status == "failed"
    for message in in_flight[1:]:
        row = row_of(engine, message.id)
        assert (row.status, row.error_code, row.attempts) == ("cancelled", "campaign_cancelled", 1)
        assert row.final_at is not None and row.claim_token is None
        assert events_of(engine, message.id)[-1] == (
            SPEC.id,
            "worker",
            "sending",
            "cancelled",
            "campaign_cancelled",
            None,
        )


def test_a_release_in_a_running_campaign_stays_queued_beside_a_cancelled_one(engine):
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    launch(engine, count=3)
    claimed = claim_batch(engine, SPEC.id, 1)
    cancel_campaign(engine, other.id)
    assert release(engine, [m.id for m in claimed]) == 3
    assert {row_of(engine, m.id).status for m in claimed} == {"queued"}


def test_a_claim_returns_and_logs_only_what_it_took_even_under_a_token_used_before(engine):
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    launch(engine, count=6, batch_size=3)
    token = "9" * 32
    first = claim_batch(engine, SPEC.id, 1, token=token)
    second = claim_batch(engine, SPEC.id, 2, token=token)
    elsewhere = claim_batch(engine, other.id, 1, token=token)
    ids = [m.id for m in first + second + elsewhere]
    assert len(ids) == len(set(ids)) == 9
    assert {row_of(engine, m.id).batch for m in second} == {2}
    for message in first + second:
        assert events_of(engine, message.id) == [
            (SPEC.id, "worker", "queued", "sending", None, {"provider": "sandbox"})
        ]
    assert {e[0] for m in elsewhere for e in events_of(engine, m.id)} == {other.id}
