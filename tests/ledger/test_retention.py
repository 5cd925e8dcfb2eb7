"""Retention on both backends: old numbers become keyed HMACs, the chain still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger.chain import seal_all, verify
from ledger.messages import apply_receipt
from ledger.retention import RetentionError, apply, pseudonym
from ledger.schema import messages, now
from tests.ledger.test_finaliser import sent

KEY = "khoá-bí-mật-của-sở-tttt"


def numbers(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(messages.c.recipient).order_by(messages.c.id)))


def test_old_numbers_become_keyed_hmacs_and_the_chain_still_verifies(engine):
    ids = sent(engine)
    for message_id in ids[:4]:
        apply_receipt(engine, "sandbox", f"P{message_id}", Status.DELIVERED, None)
    with engine.begin() as conn:  # four of them ended 100 days ago
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(ids[:4]))
            .values(final_at=now() - timedelta(days=100))
        )
    seal_all(engine)
    head = verify(engine).head
    before = numbers(engine)

    assert apply(engine, KEY, timedelta(days=90)) == 4
    after = numbers(engine)
    assert after[:4] == [pseudonym(KEY, number) for number in before[:4]]
    assert all(n.startswith("h:") and len(n) <= 20 for n in after[:4])
    assert after[4:] == before[4:]  # still sending or recent: kept
    assert apply(engine, KEY, timedelta(days=90)) == 0  # done once
    verdict = verify(engine)
    assert verdict.ok and verdict.head == head  # events never held a number


def test_the_same_number_gives_the_same_pseudonym_only_under_the_same_key():
    assert pseudonym(KEY, "+84912345678") == pseudonym(KEY, "+84912345678")
    assert pseudonym(KEY, "+84912345678") != pseudonym(KEY + "x", "+84912345678")
    assert pseudonym(KEY, "+84912345678") != pseudonym(KEY, "+84912345679")


def test_a_short_key_is_refused(engine):
    with pytest.raises(RetentionError, match="LOA_RETENTION_KEY"):
        apply(engine, "short", timedelta(days=1))
