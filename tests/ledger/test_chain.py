"""The tamper-evident log on both backends: sealing, verifying, and what tampering looks
like to ``verify``; on PostgreSQL the database itself refuses to change history."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.audit.log import make_checkpoint
from ledger.chain import (
    GENESIS,
    audit_status,
    record_verdict,
    seal,
    seal_all,
    verified_within,
    verify,
)
from ledger.messages import claim_batch, release
from ledger.schema import events, now, seals
from tests.helpers import record
from tests.ledger.test_ledger import SPEC


def campaign_with_events(engine, count: int = 10) -> None:
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(count)]
    record(engine, SPEC, rows)
    claimed = claim_batch(engine, SPEC.id, 1)
    release(engine, [m.id for m in claimed[: count // 2]], code="tạm dừng")  # some Vietnamese


def independent_head(engine) -> str:
    """The chain recomputed from the documented encoding alone, in event-id order (the
    seal order when nothing committed late), sharing no code with ``ledger.chain``."""
    head = GENESIS
    with engine.connect() as conn:
        for row in conn.execute(sa.select(events).order_by(events.c.id)):
            body = {
                "id": row.id,
                "campaign_id": row.campaign_id,
                "message_id": row.message_id,
                "at": row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "source": row.source,
                "from_status": row.from_status,
                "to_status": row.to_status,
                "code": row.code,
                "detail": row.detail,
            }
            text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            head = hashlib.sha256(f"{head}\n{text}".encode()).hexdigest()
    return head


def test_every_event_is_sealed_once_and_the_chain_holds(engine):
    campaign_with_events(engine)
    with engine.connect() as conn:
        written = conn.scalar(sa.select(sa.func.count()).select_from(events))
    assert seal_all(engine) == written > 10
    assert seal(engine) == 0  # nothing new: nothing sealed twice
    verdict = verify(engine)
    assert verdict.ok and verdict.sealed == written and verdict.unsealed == 0
    assert verdict.head == independent_head(engine)


def test_new_events_extend_the_chain_and_unsealed_ones_are_counted(engine):
    campaign_with_events(engine)
    seal_all(engine)
    before = verify(engine).head
    claim_batch(engine, SPEC.id, 1)  # five more moves
    assert verify(engine).unsealed == 5
    assert seal_all(engine) == 5
    after = verify(engine)
    assert after.ok and after.head != before and after.head == independent_head(engine)


def tamper(engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)


@pytest.mark.parametrize(
    ("sql", "seq", "reason", "holding"),
    [
        ("UPDATE events SET to_status = 'delivered' WHERE id = 7", 7, "event altered", 6),
        ("UPDATE events SET at = '2020-08-01 00:00:00' WHERE id = 3", 3, "event altered", 2),
        ("DELETE FROM events WHERE id = 9", 9, "event missing", 8),
        # A reordered pair: events 4 and 5 swap their contents (and so their places).
        (
            "UPDATE events SET message_id = CASE id WHEN 4 THEN "
            "(SELECT message_id FROM events WHERE id = 5) ELSE "
            "(SELECT message_id FROM events WHERE id = 4) END WHERE id IN (4, 5)",
            4,
            "event altered",
            3,
        ),
        ("DELETE FROM seals WHERE seq = 6", 7, "seal out of sequence (expected 6)", 5),
    ],
)
def test_verify_names_the_first_broken_link(sqlite_url, sql, seq, reason, holding):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    campaign_with_events(engine)
    seal_all(engine)
    assert verify(engine).ok
    tamper(engine, sql)  # straight into the SQLite file, as an intruder would
    verdict = verify(engine)
    assert not verdict.ok
    assert (verdict.broken["seq"], verdict.broken["reason"]) == (seq, reason)
    assert verdict.sealed == holding  # the links before the break still hold


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET code = 'x' WHERE id = 1",
        "DELETE FROM events WHERE id = 1",
        "TRUNCATE events",
        "UPDATE seals SET hash = 'x' WHERE seq = 1",
        "DELETE FROM seals",
        "UPDATE verifications SET ok = true",
        "DELETE FROM verifications",
        "TRUNCATE verifications",
        "UPDATE checkpoints SET root = 'x'",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints",
    ],
)
def test_postgresql_refuses_to_change_history(postgres_url, sql):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    campaign_with_events(engine)
    seal_all(engine)
    record_verdict(engine, verify(engine))
    make_checkpoint(engine, "loa", bytes(range(1, 33)))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        tamper(engine, sql)
    assert verify(engine).ok
    engine.dispose()


def test_concurrent_writers_and_sealers_never_fork_the_chain(engine):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(200)]
    record(engine, SPEC, rows, batch_size=20)
    start, errors = threading.Barrier(6), []

    def write(batch: int) -> None:
        start.wait()
        for b in range(batch, 11, 3):
            claim_batch(engine, SPEC.id, b)

    def sealing() -> None:
        start.wait()
        try:
            for _ in range(20):
                seal(engine, limit=17)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in (1, 2, 3)]
    threads += [threading.Thread(target=sealing) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seal_all(engine)
    verdict = verify(engine)
    with engine.connect() as conn:
        written = conn.scalar(sa.select(sa.func.count()).select_from(events))
        sealed_ids = conn.scalar(sa.select(sa.func.count(sa.distinct(seals.c.event_id))))
    assert verdict.ok and verdict.sealed == written == sealed_ids == 1 + 200


@pytest.mark.postgres
def test_an_event_committed_late_is_sealed_after_the_ones_that_overtook_it(postgres_url):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    campaign_with_events(engine, count=4)
    late = engine.connect()
    slow = late.begin()
    late.execute(events.insert().values(campaign_id=SPEC.id, at=now(), source="operator"))
    claim_batch(engine, SPEC.id, 1)  # later ids, committed first
    seal_all(engine)
    slow.commit()  # the earlier id appears only now
    late.close()
    assert verify(engine).unsealed == 1
    assert seal_all(engine) == 1
    assert verify(engine).ok
    engine.dispose()


def test_reports_read_the_last_recorded_verification(engine):
    campaign_with_events(engine)
    status = audit_status(engine)
    assert status["verified"] is None and status["head_seq"] == 0 and status["unsealed"] > 10
    assert not verified_within(engine, timedelta(days=1))
    sealed = seal_all(engine)
    record_verdict(engine, verify(engine))
    release(engine, [m.id for m in claim_batch(engine, SPEC.id, 1)[:2]], code="again")
    sealed_after = seal_all(engine)
    status = audit_status(engine)
    assert status["verified"]["ok"] and status["verified"]["sealed"] == sealed
    assert status["head_seq"] == sealed + sealed_after and status["unsealed"] == 0
    assert status["sealed_since_verified"] == sealed_after > 0
    assert status["head"] == verify(engine).head
    assert verified_within(engine, timedelta(days=1))
    assert not verified_within(engine, timedelta(0))
