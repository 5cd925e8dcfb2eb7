"""The finaliser on both backends: silence becomes ``unknown`` after the provider's
window, waiting past validity becomes ``expired``, and a late receipt still corrects."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.finaliser import finalise
from ledger.handover import record_sent
from ledger.messages import apply_receipt, claim_batch
from ledger.schema import campaigns, events, messages, now
from ledger.summary import status_counts
from tests.helpers import record
from tests.ledger.test_ledger import SPEC


def sent(engine, count: int = 6) -> list[int]:
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(count)]
    record(engine, SPEC, rows)
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in claimed])
    return [m.id for m in claimed]


def age(engine, ids: list[int], hours: float) -> None:
    """Time passes for these messages: they were sent ``hours`` ago."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(messages)
            .where(messages.c.id.in_(ids))
            .values(sent_at=now() - timedelta(hours=hours))
        )


def test_silence_after_the_window_becomes_unknown_and_a_late_receipt_corrects_it(engine):
    ids = sent(engine)
    age(engine, ids[:4], hours=80)  # past the 72 h default
    age(engine, ids[4:5], hours=30)  # within it
    assert finalise(engine) == {"unknown": 4, "expired": 0, "cancelled": 0}
    assert finalise(engine) == {"unknown": 0, "expired": 0, "cancelled": 0}  # each row once
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.UNKNOWN], counts[Status.SENT]) == (4, 2)
    with engine.connect() as conn:
        sources = conn.execute(
            sa.select(events.c.source, events.c.code).where(events.c.to_status == "unknown")
        ).all()
    assert sources == [("finaliser", "no_final_receipt")] * 4

    late = apply_receipt(engine, "sandbox", f"P{ids[0]}", Status.DELIVERED, None)
    assert late.moved  # the provider did deliver it after all: corrected, and recorded
    assert status_counts(engine, SPEC.id)[Status.DELIVERED] == 1


def test_each_provider_has_its_own_window(engine):
    ids = sent(engine)
    age(engine, ids, hours=30)
    assert finalise(engine, {"sandbox": timedelta(hours=24)}) == {
        "unknown": 6,
        "expired": 0,
        "cancelled": 0,
    }


def test_waiting_past_validity_becomes_expired(engine):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(5)]
    record(engine, SPEC, rows)
    assert finalise(engine) == {"unknown": 0, "expired": 0, "cancelled": 0}  # still valid: it waits
    with engine.begin() as conn:
        conn.execute(sa.update(campaigns).values(valid_until=now() - timedelta(minutes=1)))
    assert finalise(engine) == {"unknown": 0, "expired": 5, "cancelled": 0}
    assert status_counts(engine, SPEC.id)[Status.EXPIRED] == 5


def test_a_short_window_settles_only_its_own_providers_messages(engine):
    """One campaign, two providers: Viettel numbers through ``viettel-gw`` (the default
    72 h window), the rest through ``sandbox`` (24 h). Messages sent 30 h ago are past
    the sandbox's window but well within the gateway's: the gateway's receipts may still
    come, so its messages must stay ``sent``."""
    spec = CampaignSpec.model_validate(
        {**SPEC.model_dump(mode="json"), "routing": {"carriers": {"viettel": "viettel-gw"}}}
    )
    viettel = [f"0961{i:06d}" for i in range(3)]  # 096: Viettel
    mobifone = [f"0901{i:06d}" for i in range(4)]  # 090: MobiFone, the default route
    rows = [ListRow(row=i + 2, phone=p, values=()) for i, p in enumerate(viettel + mobifone)]
    intake = record(engine, spec, rows)
    claimed = [m for batch, _ in intake.batches for m in claim_batch(engine, spec.id, batch)]
    record_sent(engine, spec.id, [(m.id, f"P{m.id}") for m in claimed])
    age(engine, [m.id for m in claimed], hours=30)

    assert finalise(engine, {"sandbox": timedelta(hours=24)})["unknown"] == 4
    pairs = (messages.c.provider, messages.c.status)
    with engine.connect() as conn:
        by_provider = sorted(conn.execute(sa.select(*pairs, sa.func.count()).group_by(*pairs)))
    assert by_provider == [("sandbox", "unknown", 4), ("viettel-gw", "sent", 3)]
