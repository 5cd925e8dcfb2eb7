"""The chain as reports and the housekeeper see it without recomputing it: the recorded
verdicts (``record_verdict``), whether one is recent enough (``verified_within``, which
spares the housekeeper a daily walk of millions of links) and ``audit_status``. Clocks
are injected (``ledger.chain.now``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ledger.chain import (
    GENESIS,
    audit_status,
    record_verdict,
    seal,
    seal_all,
    verified_within,
    verify,
)
from ledger.schema import seals
from tests.ledger.chain_rig import Clock, T, add_events, independent_root, link_at
from tests.ledger.test_chain import campaign_with_events, tamper


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def test_an_empty_ledger_has_an_empty_chain_never_verified(engine):
    assert audit_status(engine) == {
        "head_seq": 0,
        "head": GENESIS,
        "unsealed": 0,
        "verified": None,
        "sealed_since_verified": 0,
    }
    assert not verified_within(engine, timedelta(days=365))


def test_events_waiting_are_counted_before_and_after_a_pass(engine):
    campaign_with_events(engine)  # sixteen events, none sealed
    assert audit_status(engine)["unsealed"] == verify(engine).unsealed == 16
    seal(engine, limit=10)
    status = audit_status(engine)
    assert (status["head_seq"], status["unsealed"]) == (10, 6)
    assert status["head"] == link_at(engine, 10)
    assert status["sealed_since_verified"] == 10  # never verified: every link


def test_a_straggler_sealed_last_leaves_nothing_counted_as_waiting(engine):
    """An event that committed after later ones were sealed is sealed last: the events
    above it are sealed already, and the report must not count them as waiting."""
    add_events(engine, [10, 11])
    seal_all(engine)
    add_events(engine, [5])
    assert seal_all(engine) == 1
    with engine.connect() as conn:
        assert conn.scalar(sa.select(seals.c.event_id).where(seals.c.seq == 3)) == 5
    assert audit_status(engine)["unsealed"] == verify(engine).unsealed == 0
    add_events(engine, [12])
    assert audit_status(engine)["unsealed"] == verify(engine).unsealed == 1


def test_the_last_recorded_verdict_is_what_a_report_shows(sqlite_url, clock):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    campaign_with_events(engine)
    seal_all(engine)
    record_verdict(engine, verify(engine))
    tamper(engine, "UPDATE events SET source = 'forged' WHERE id = 7")
    clock.at = T + timedelta(hours=3)
    record_verdict(engine, verify(engine))
    add_events(engine, [100, 101, 102])
    seal_all(engine)
    assert audit_status(engine) == {
        "head_seq": 19,
        "head": link_at(engine, 19),
        "unsealed": 0,
        "verified": {
            "at": "2026-03-01T05:30:00.000000Z",
            "ok": False,
            "sealed": 6,
            "head": link_at(engine, 6),
            "root": independent_root(engine, 6),
            "broken": {"seq": 7, "event_id": 7, "reason": "event altered"},
        },
        "sealed_since_verified": 13,  # counted from the links that held
    }


def test_a_verification_counts_as_recent_for_exactly_its_period(engine, clock):
    campaign_with_events(engine)
    seal_all(engine)
    record_verdict(engine, verify(engine))
    day = timedelta(days=1)
    clock.at = T + day - timedelta(microseconds=1)
    assert verified_within(engine, day)
    clock.at = T + day
    assert not verified_within(engine, day)
    clock.at = T + 2 * day
    record_verdict(engine, verify(engine))  # the newest one is what counts
    clock.at = T + 2 * day + timedelta(hours=1)
    assert verified_within(engine, timedelta(hours=2))
    assert not verified_within(engine, timedelta(hours=1))
    assert audit_status(engine)["verified"]["at"] == "2026-03-03T02:30:00.000000Z"
