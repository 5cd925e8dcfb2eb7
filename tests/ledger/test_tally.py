"""One pass over a campaign's messages (``ledger.tally``) says what the separate reads
said: per status, per provider, parts billed (all, or one channel's), what is left per
provider and the latest send of those awaiting receipts; on both ledgers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.schema import key_of, messages, now
from ledger.summary import by_provider, parts_billed, status_counts
from ledger.tally import tally
from ledger.waiting import facts, remaining
from tests.helpers import record
from tests.worker.test_dispatch import SPEC

#: (status, provider, parts, sent seconds ago) by the message's place.
MOVES = [
    ("sent", "sandbox", 2, 30), ("sent", "backup", 1, 5), ("delivered", "sandbox", 3, 90),
    ("failed", "backup", 1, None), ("sending", "backup", 2, None), ("queued", "sandbox", 1, None),
    ("undelivered", "sandbox", 1, 10), ("unknown", "backup", 2, 20), ("expired", "sandbox", 1, None),
]  # fmt: skip


def test_one_pass_says_what_the_separate_reads_said(engine):
    rows = [ListRow(i + 2, f"09123{i:05d}", ()) for i in range(len(MOVES) + 3)]
    record(engine, SPEC, rows)
    moment = now()
    with engine.begin() as conn:
        ids = conn.scalars(
            sa.select(messages.c.id)
            .where(messages.c.campaign_key == key_of(SPEC.id))
            .order_by(messages.c.id)
        ).all()
        for message_id, (status, provider, parts, ago) in zip(ids, MOVES, strict=False):
            sent = None if ago is None else moment - timedelta(seconds=ago)
            final = moment - timedelta(seconds=15) if status == "failed" else None
            conn.execute(
                messages.update()
                .where(messages.c.id == message_id)
                .values(status=status, provider=provider, parts=parts, sent_at=sent, final_at=final)
            )
    found = tally(engine, SPEC.id)
    assert found.statuses() == status_counts(engine, SPEC.id)
    assert found.by_provider() == by_provider(engine, SPEC.id)
    assert found.parts_billed() == parts_billed(engine, SPEC.id) == 2 + 1 + 3 + 1 + 2
    assert found.parts_billed((0,)) == parts_billed(engine, SPEC.id, (0,))
    assert found.parts_billed((-1,)) == 0
    assert found.remaining() == remaining(engine, SPEC.id)
    assert found.last_sent() == facts(engine, SPEC.id, "running").last_sent
    # Handed over within the last minute: the two sent, the undelivered, the unknown and
    # the failed (ended without a send 15 s ago); not the delivered of 90 s ago.
    rate, seconds = found.rate()
    assert seconds == 60 and rate == 5 / 60
