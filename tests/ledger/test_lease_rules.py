"""The reaper's rules on both backends: which claims it settles (past the lease, or held
by no live worker), what it makes of each (queued again, or unknown once handed), that a
claim taken again meanwhile stays its new owner's, and which queued batches count as
stranded until they are enqueued again."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.handover import mark_handed, record_sent
from ledger.lease import reap, reap_unheld, renew, stranded
from ledger.messages import claim_batch, release
from ledger.schema import campaigns, events, messages, now
from tests.helpers import record
from tests.ledger.test_ledger import SPEC

HOUR = timedelta(hours=1)


def launch(engine, count: int = 6, batch_size: int = 3, spec=SPEC) -> None:
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(count)]
    record(engine, spec, rows, batch_size=batch_size)


def claimed_ago(engine, ids: list[int], ago: timedelta) -> None:
    """As if these rows had been claimed ``ago``."""
    with engine.begin() as conn:
        conn.execute(messages.update().where(messages.c.id.in_(ids)).values(claimed_at=now() - ago))


def touched_ago(engine, ago: timedelta, **where) -> None:
    """As if the campaign had been launched, and these rows last touched, ``ago``."""
    then = now() - ago
    with engine.begin() as conn:
        conn.execute(campaigns.update().values(created_at=then))
        conditions = [messages.c[k] == v for k, v in where.items()]
        conn.execute(messages.update().where(*conditions).values(updated_at=then))


def settled(engine, message_id: int) -> tuple:
    """The row's status and code, and its last event's source, move and code."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(messages.c.status, messages.c.error_code).where(messages.c.id == message_id)
        ).one()
        last = conn.execute(
            sa.select(events.c.source, events.c.from_status, events.c.to_status, events.c.code)
            .where(events.c.message_id == message_id)
            .order_by(events.c.id.desc())
            .limit(1)
        ).one()
    return (*row, *last)


def test_past_the_lease_unhanded_rows_go_back_and_handed_ones_become_unknown(engine):
    launch(engine, count=9)
    old = claim_batch(engine, SPEC.id, 1)
    recent = claim_batch(engine, SPEC.id, 2)
    done_long_ago = claim_batch(engine, SPEC.id, 3)
    for group in (old[:2], recent[:1], done_long_ago):
        mark_handed(engine, [m.id for m in group], group[0].claim)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in done_long_ago])
    claimed_ago(engine, [m.id for m in old + done_long_ago], 2 * HOUR)

    done = reap(engine, HOUR)
    assert done.requeued == {(SPEC.id, 1, "sandbox"): 1} and done.unknown == 2
    for message in old[:2]:
        assert settled(engine, message.id) == (
            "unknown",
            "lease_expired_after_handover",
            "reaper",
            "sending",
            "unknown",
            "lease_expired_after_handover",
        )
    assert settled(engine, old[2].id) == (
        "queued",
        "lease_expired",
        "reaper",
        "sending",
        "queued",
        "lease_expired",
    )
    assert {settled(engine, m.id)[0] for m in recent} == {"sending"}  # within the lease
    assert {settled(engine, m.id)[0] for m in done_long_ago} == {"sent"}  # not in flight
    assert reap(engine, HOUR) == reap(engine, 3 * HOUR)  # nothing twice, nothing younger
    assert reap(engine, HOUR).requeued == {} and reap(engine, HOUR).unknown == 0


def test_a_provider_with_an_idempotency_key_gets_even_handed_rows_back(engine):
    launch(engine, count=3)
    claimed = claim_batch(engine, SPEC.id, 1)
    mark_handed(engine, [claimed[0].id], claimed[0].claim)
    claimed_ago(engine, [m.id for m in claimed], 2 * HOUR)
    asked: list[str] = []

    def keyed(provider: str) -> bool:
        asked.append(provider)
        return True

    done = reap(engine, HOUR, resend_handed=keyed)
    assert asked == ["sandbox"]  # asked for the handed row only
    assert done.requeued == {(SPEC.id, 1, "sandbox"): 3} and done.unknown == 0
    assert settled(engine, claimed[0].id)[:2] == ("queued", "lease_expired_resend_with_key")
    assert settled(engine, claimed[1].id)[:2] == ("queued", "lease_expired")


def test_a_claim_taken_again_while_the_reaper_works_stays_its_new_owners(engine):
    """Two reapers: the second settles the rows and a worker claims them again while the
    first is still deciding; the first's moves, conditional on the old claim, change
    nothing."""
    launch(engine, count=3)
    claimed = claim_batch(engine, SPEC.id, 1)
    mark_handed(engine, [m.id for m in claimed], claimed[0].claim)  # each asks, in whatever order
    claimed_ago(engine, [m.id for m in claimed], 2 * HOUR)
    answers = iter([True, False, True])  # resent with a key (queued) or not (unknown)

    def meanwhile(provider: str) -> bool:
        if not meanwhile.done:  # the other reaper and a worker overtake this one
            meanwhile.done = True
            reap(engine, HOUR, resend_handed=lambda _: True)
            assert len(claim_batch(engine, SPEC.id, 1, token="e" * 32)) == 3
        return next(answers)

    meanwhile.done = False
    done = reap(engine, HOUR, resend_handed=meanwhile)
    assert done.requeued == {} and done.unknown == 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.status, messages.c.claim_token).where(messages.c.batch == 1)
        ).all()
    assert set(rows) == {("sending", "e" * 32)}


def test_a_live_batch_slower_than_the_lease_hands_over_nothing_it_lost(engine):
    """A batch waiting on a slow rate past the lease: the reaper gives its unhanded rows
    back and another worker claims them; the first batch's hand-over, under its old
    claim, marks none of them, so only the new owner sends them."""
    launch(engine, count=3)
    slow = claim_batch(engine, SPEC.id, 1)
    claimed_ago(engine, [m.id for m in slow], 2 * HOUR)
    assert reap(engine, HOUR).requeued == {(SPEC.id, 1, "sandbox"): 3}
    again = claim_batch(engine, SPEC.id, 1)
    ids = [m.id for m in slow]
    assert mark_handed(engine, ids, slow[0].claim) == set()
    assert mark_handed(engine, ids, again[0].claim) == set(ids)


def test_a_slow_batch_gives_back_none_of_the_rows_another_worker_took_since(engine):
    """The attack: batch A outlives the lease, the reaper gives its rows to batch B, which
    sends them; then A, told to pause, gives back its to-do list. Given back unchecked,
    they were claimed a third time and sent twice."""
    launch(engine, count=3)
    slow = claim_batch(engine, SPEC.id, 1)
    claimed_ago(engine, [m.id for m in slow], 2 * HOUR)
    reap(engine, HOUR)
    taker = claim_batch(engine, SPEC.id, 1)
    ids = [m.id for m in slow]
    assert mark_handed(engine, ids, taker[0].claim) == set(ids)
    assert release(engine, ids, code="provider_down", refund=True, claim=slow[0].claim) == 0
    assert claim_batch(engine, SPEC.id, 1) == []  # nothing to claim a third time
    assert release(engine, ids[:1], claim=taker[0].claim) == 1  # its owner may


def test_a_row_handed_while_the_reaper_decides_is_not_given_back(engine, monkeypatch):
    """The reaper read a row unhanded; its worker, alive but slow, marks it handed before
    the reaper moves it. Given back then, it would go out twice: it becomes ``unknown``
    at the next look instead, as any handed row past the lease."""
    import ledger.lease

    launch(engine, count=3)
    claimed = claim_batch(engine, SPEC.id, 1)
    claimed_ago(engine, [m.id for m in claimed], 2 * HOUR)
    move = ledger.lease.record_outcome

    def handed_meanwhile(engine, message_id, *args):
        if message_id == claimed[0].id:
            assert mark_handed(engine, [message_id], claimed[0].claim) == {message_id}
        return move(engine, message_id, *args)

    monkeypatch.setattr(ledger.lease, "record_outcome", handed_meanwhile)
    done = reap(engine, HOUR)
    assert done.requeued == {(SPEC.id, 1, "sandbox"): 2} and done.unknown == 0
    assert settled(engine, claimed[0].id)[0] == "sending"
    monkeypatch.setattr(ledger.lease, "record_outcome", move)
    assert reap(engine, HOUR).unknown == 1
    assert settled(engine, claimed[0].id)[:2] == ("unknown", "lease_expired_after_handover")


def test_claims_no_live_worker_holds_are_settled_after_the_grace(engine):
    launch(engine, count=9)
    held = claim_batch(engine, SPEC.id, 1, token="f" * 32)
    dead = claim_batch(engine, SPEC.id, 2, token="0" * 32)
    young = claim_batch(engine, SPEC.id, 3, token="1" * 32)
    mark_handed(engine, [dead[0].id], dead[0].claim)
    claimed_ago(engine, [m.id for m in held + dead], 10 * HOUR)

    done = reap_unheld(engine, {"f" * 32}, HOUR)
    assert done.requeued == {(SPEC.id, 2, "sandbox"): 2} and done.unknown == 1
    assert settled(engine, dead[0].id)[:2] == ("unknown", "claim_abandoned_after_handover")
    assert settled(engine, dead[1].id)[:2] == ("queued", "claim_abandoned")
    assert {settled(engine, m.id)[0] for m in held + young} == {"sending"}

    release(engine, [m.id for m in young])  # a row back in the queue is not in flight
    mark_handed(engine, [held[0].id], held[0].claim)
    keyed = reap_unheld(engine, set(), HOUR, resend_handed=lambda _: True)
    assert keyed.requeued == {(SPEC.id, 1, "sandbox"): 3} and keyed.unknown == 0
    assert settled(engine, held[0].id)[:2] == ("queued", "claim_abandoned_resend_with_key")


def test_stranded_batches_are_the_running_campaigns_queued_rows_left_alone(engine):
    launch(engine, count=9)
    other = SPEC.model_copy(update={"id": "paused-campaign"})
    launch(engine, count=3, spec=other)
    claim_batch(engine, SPEC.id, 1)
    given_back = claim_batch(engine, SPEC.id, 2)
    release(engine, [m.id for m in given_back])
    paused = claim_batch(engine, other.id, 1)
    release(engine, [m.id for m in paused])
    with engine.begin() as conn:
        conn.execute(campaigns.update().where(campaigns.c.id == other.id).values(state="paused"))

    assert stranded(engine, HOUR) == {}  # all touched just now
    assert stranded(engine, HOUR, claimed_only=False) == {}
    touched_ago(engine, 2 * HOUR)  # the paused campaign's rows too
    # Batch 3 was never touched since the launch (two hours ago): its rows count from it.
    with engine.begin() as conn:
        conn.execute(messages.update().where(messages.c.batch == 3).values(updated_at=sa.null()))

    assert stranded(engine, HOUR) == {(SPEC.id, 2, "sandbox"): 3}  # given back after a claim
    assert stranded(engine, HOUR, claimed_only=False) == {
        (SPEC.id, 2, "sandbox"): 3,
        (SPEC.id, 3, "sandbox"): 3,
    }
    assert stranded(engine, 3 * HOUR, claimed_only=False) == {}  # not idle that long


def test_a_batch_enqueued_again_waits_as_long_before_the_next_rescue(engine):
    launch(engine, count=6)
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    for campaign, batch in ((SPEC.id, 1), (SPEC.id, 2), (other.id, 1)):
        release(engine, [m.id for m in claim_batch(engine, campaign, batch)])
    with engine.begin() as conn:  # one row of batch 1 went to the fallback provider
        first = conn.scalar(sa.select(sa.func.min(messages.c.id)))
        conn.execute(messages.update().where(messages.c.id == first).values(provider="fallback"))
        conn.execute(messages.update().where(messages.c.id == first + 1).values(status="sending"))
    touched_ago(engine, 2 * HOUR)
    assert len(stranded(engine, HOUR)) == 4

    assert renew(engine, SPEC.id, 1, "sandbox") == 1  # the queued sandbox row of batch 1
    assert stranded(engine, HOUR) == {
        (SPEC.id, 1, "fallback"): 1,
        (SPEC.id, 2, "sandbox"): 3,
        (other.id, 1, "sandbox"): 3,
    }
