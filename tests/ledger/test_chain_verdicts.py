"""What `loa audit verify` and `loa audit seal` (scripts/audit.py) and the housekeeper get
from the chain, through the same functions: ``seal``/``seal_all`` with their pass limit
and straggler window, ``verify``'s verdict read page by page, and the verdict as the JSON
output shows it. Clocks are injected (``ledger.chain.now``); expected links are read from
the seals, or recomputed by ``independent_head`` (no code shared with the chain)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ledger.chain import GENESIS, lag, seal, seal_all, verify
from ledger.schema import seals
from tests.ledger.chain_rig import Clock, T, add_events, independent_root, link_at
from tests.ledger.test_chain import campaign_with_events, independent_head, tamper


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def test_a_verdict_reads_as_the_json_output_shows_it(engine, clock):
    campaign_with_events(engine)
    sealed = seal_all(engine)
    add_events(engine, [1000, 1001])  # written after the seal
    verdict = verify(engine)
    assert verdict.as_dict() == {
        "ok": True,
        "sealed": sealed,
        "head": link_at(engine, sealed),
        "root": independent_root(engine, sealed),
        "broken": None,
        "problems": [],
        "checkpoints": 0,
        "messages": 10,
        "unsealed": 2,
        "checked_at": "2026-03-01T02:30:00.000000Z",
    }


def test_a_broken_verdict_names_the_seal_the_event_and_the_last_link_that_holds(sqlite_url, clock):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    campaign_with_events(engine)
    seal_all(engine)
    holding = link_at(engine, 6)
    tamper(engine, "UPDATE events SET source = 'forged' WHERE id = 7")
    add_events(engine, [1000])  # not counted: the walk stops at the break
    assert verify(engine).as_dict() == {
        "ok": False,
        "sealed": 6,
        "head": holding,
        "root": independent_root(engine, 6),  # of the events that held
        "broken": {"seq": 7, "event_id": 7, "reason": "event altered"},
        "problems": [],
        "checkpoints": 0,
        "messages": 10,
        "unsealed": 0,
        "checked_at": "2026-03-01T02:30:00.000000Z",
    }
    tamper(engine, "DELETE FROM seals WHERE seq = 3")
    assert verify(engine, page=2).as_dict()["broken"] == {
        "seq": 4,
        "event_id": 4,
        "reason": "seal out of sequence (expected 3)",
    }
    tamper(engine, "DELETE FROM events WHERE id = 1")
    broken = verify(engine)
    assert broken.broken == {"seq": 1, "event_id": 1, "reason": "event missing"}
    assert (broken.sealed, broken.head) == (0, GENESIS)


@pytest.mark.parametrize("page", [1, 3, 4, 16, 17])
def test_the_chain_reads_the_same_whatever_the_page(engine, page):
    campaign_with_events(engine)  # sixteen events: pages that divide it and pages that don't
    assert seal_all(engine) == 16
    paged, whole = verify(engine, page=page), verify(engine)
    assert paged.ok and paged.sealed == whole.sealed == 16
    assert paged.head == whole.head == independent_head(engine)


@pytest.mark.parametrize("page", [1, 3, 4, 16])
def test_a_break_on_a_later_page_is_found(sqlite_url, page):
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    campaign_with_events(engine)
    seal_all(engine)
    tamper(engine, "UPDATE events SET source = 'operator' WHERE id = 13")
    verdict = verify(engine, page=page)
    assert verdict.broken == {"seq": 13, "event_id": 13, "reason": "event altered"}
    assert (verdict.sealed, verdict.head) == (12, link_at(engine, 12))


def test_a_pass_seals_at_most_its_limit_in_id_order(engine):
    campaign_with_events(engine)
    assert seal(engine, limit=3) == 3
    assert verify(engine).unsealed == 13
    with engine.connect() as conn:
        assert conn.execute(sa.select(seals.c.seq, seals.c.event_id).order_by(seals.c.seq)).all() == [
            (1, 1), (2, 2), (3, 3),
        ]  # fmt: skip
    assert seal(engine, limit=20) == 13
    assert verify(engine).head == independent_head(engine)


def test_one_pass_seals_what_it_finds_in_id_order(engine):
    """Events committed out of id order, all there when the pass runs: sealed by id (on
    PostgreSQL the table itself holds them in the order they were written)."""
    for event_id in (3, 1, 4, 2):
        add_events(engine, [event_id])
    assert seal_all(engine) == 4
    with engine.connect() as conn:
        assert conn.execute(sa.select(seals.c.event_id).order_by(seals.c.seq)).scalars().all() == [
            1, 2, 3, 4,
        ]  # fmt: skip
    assert verify(engine).head == independent_head(engine)


def test_seal_all_keeps_sealing_pass_after_pass(engine):
    """`loa audit seal` after a large campaign: more events than one pass takes."""
    count = 20_000 + 7
    add_events(engine, range(1, count + 1))
    assert seal_all(engine) == count
    verdict = verify(engine)
    assert verdict.ok and verdict.sealed == count and verdict.unsealed == 0


def test_a_pass_looks_near_the_head_and_a_look_everywhere_finds_the_rest(engine, clock):
    """An ordinary pass looks 50,000 ids below the highest sealed: an event exactly that
    far below is beyond it, one id nearer is sealed. A look everywhere (``seal_all``,
    and the housekeeper's once a minute) finds the far one too, and ``verify`` and
    ``lag`` count it wherever it is."""
    add_events(engine, [50_001])
    assert seal_all(engine) == 1
    add_events(engine, [1], at=T - timedelta(hours=2))  # committed very late, far back
    add_events(engine, [2], at=T - timedelta(hours=1))
    assert verify(engine).unsealed == 2
    assert lag(engine) == timedelta(hours=2)
    assert seal(engine) == 1  # the near one
    with engine.connect() as conn:
        assert conn.scalar(sa.select(seals.c.event_id).where(seals.c.seq == 2)) == 2
    assert seal_all(engine) == 1  # the far one, everywhere
    verdict = verify(engine)
    assert verdict.ok and (verdict.sealed, verdict.unsealed) == (3, 0)
    assert lag(engine) is None


def test_an_event_inserted_with_an_id_far_above_the_rest_stalls_nothing(engine, clock):
    """A database administrator inserts one event at id 10^12: the ordinary pass's window
    then lay past every event written after, which stayed unsealed and uncounted."""
    add_events(engine, [1, 2])
    add_events(engine, [10**12])
    assert seal_all(engine) == 3
    add_events(engine, [3, 4])  # the database's own counter goes on from where it was
    assert verify(engine).unsealed == 2
    assert seal_all(engine) == 2
    assert verify(engine).unsealed == 0


def test_lag_is_the_age_of_the_oldest_unsealed_event(engine, clock):
    assert lag(engine) is None  # an empty ledger: nothing waits
    add_events(engine, [1], at=T - timedelta(minutes=5))
    add_events(engine, [2], at=T - timedelta(minutes=1))
    assert lag(engine) == timedelta(minutes=5)
    seal(engine, limit=1)
    assert lag(engine) == timedelta(minutes=1)
    seal_all(engine)
    assert lag(engine) is None


@pytest.mark.postgres
def test_a_sealer_that_may_not_wait_leaves_the_pass_to_the_one_at_work(postgres_url):
    """The housekeeper seals with ``wait=False``: while another sealer holds the lock it
    seals nothing; `loa audit seal` (the default) waits for its turn instead."""
    from ledger.chain import SEAL_LOCK
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    campaign_with_events(engine)
    # A sealer that would wait, given up on after 100 ms: the wait shows as an error.
    impatient = sa.create_engine(engine.url, connect_args={"options": "-c lock_timeout=100"})
    try:
        with engine.begin() as other:
            other.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEAL_LOCK})
            assert seal(engine, wait=False) == 0
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                seal(impatient)
        assert verify(engine).sealed == 0
        assert seal(engine, wait=False) == 16  # the lock is free again
    finally:
        impatient.dispose()
        engine.dispose()
