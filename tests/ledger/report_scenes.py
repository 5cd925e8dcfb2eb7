"""Campaigns with every outcome, made through the ledger's own calls (those the worker,
the receipt route and an operator make), for the report tests and for the report's
screenshots (``docs/report/shots.py``).

``build(engine, spec, outcomes)`` records a campaign whose recipients end in exactly the
statuses asked for: every batch is claimed, then each message goes where its outcome
says (sent and a receipt, refused, timed out, expired, left in flight, given back), and
with ``cancelled`` the campaign is cancelled at the end, as ``loa campaign cancel`` does.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import FINAL, Status
from ledger.handover import mark_handed, record_sent
from ledger.messages import apply_receipt, cancel_campaign, claim_batch, record_outcome, release
from ledger.schema import campaigns, events, key_of, messages
from ledger.summary import status_counts
from tests.helpers import record

COLUMNS = ["Họ và tên", "Huyện"]
DISTRICTS = ("Ninh Hải", "Bác Ái", "Ninh Phước", "Ninh Sơn", "Phan Rang–Tháp Chàm",
             "Thuận Bắc", "Thuận Nam")  # fmt: skip
#: Allocation prefixes of the five carriers (campaigns.phones), a few of each.
PREFIXES = ("096", "097", "098", "086", "032", "091", "094", "088", "083", "090", "093",
            "089", "070", "092", "056", "059")  # fmt: skip
#: Cells of a real list that are not mobile numbers (each rejected with its reason).
UNUSABLE = ("chưa có", "0259 3822 123", "12345", "")
#: The codes each outcome leaves, as the sandbox carrier and the worker write them.
CODES = {"failed": "0x0B", "undelivered": "001", "unknown": "read_timeout",
         "expired": "validity_passed"}  # fmt: skip

#: The scene's one claim token (a worker marks handed only what it claimed).
CLAIM = "c" * 32


def spec(campaign_id: str, name: str, **changes: object) -> CampaignSpec:
    """A public-service campaign like the Bluezone one, with sending hours and prices."""
    fields: dict[str, object] = {
        "id": campaign_id,
        "name": name,
        "category": "public_service",
        "brandname": "NinhThuan",
        "provider": "sandbox",
        "validity": "2d",
        "sending_hours": "07:00-21:00",
        "messages": {
            "vi": "Sở TT&TT Ninh Thuận: đề nghị quý vị cài đặt ứng dụng Bluezone tại "
            "https://bluezone.gov.vn để được cảnh báo khi tiếp xúc gần người nhiễm. "
            "Trân trọng cảm ơn!"
        },
        "prices": {"currency": "VND", "default": 850, "viettel": 800, "vinaphone": 800,
                   "mobifone": 800},
    }  # fmt: skip
    fields.update(changes)
    return CampaignSpec.model_validate(fields)


def rows(count: int, seed: int, blank_districts: int = 0, unusable: int = 0) -> list[ListRow]:
    """``count`` distinct mobile numbers across the carriers, a name and a district each
    (the last ``blank_districts`` without one), then ``unusable`` rows that are not."""
    draw = random.Random(seed)
    numbers = draw.sample(range(10_000_000), count)
    made = []
    for n, number in enumerate(numbers):
        prefix = PREFIXES[draw.randrange(len(PREFIXES))]
        district = "" if n >= count - blank_districts else DISTRICTS[draw.randrange(7)]
        made.append(ListRow(n + 2, f"{prefix}{number:07d}", (f"Người {n}", district)))
    for n in range(unusable):
        made.append(ListRow(count + n + 2, UNUSABLE[n % len(UNUSABLE)], (f"Người {n}", "Bác Ái")))
    return made


def build(
    engine: sa.Engine,
    campaign: CampaignSpec,
    outcomes: dict[str, int],
    seed: int = 7,
    blank_districts: int = 0,
    batch_size: int = 200,
    unusable: int = 0,
    handed_back: int = 0,
) -> dict[str, int]:
    """Record ``campaign`` with ``sum(outcomes.values())`` recipients and bring each to
    its outcome (``status -> how many``). ``queued`` and ``cancelled`` are the ones given
    back unsent: with ``cancelled`` the campaign is cancelled at the end, so it cannot
    also keep some ``queued``. ``handed_back`` of those were marked handed to the sending
    lane before they were given back, as a worker does with messages the rate gate held
    or a throttling provider did not process. Returns the recipients per status, as the
    ledger counts them."""
    assert not (outcomes.get("queued") and outcomes.get("cancelled")), "cancel ends queued"
    total = sum(outcomes.values())
    listed = rows(total, seed, blank_districts, unusable)
    intake = record(engine, campaign, listed, COLUMNS, batch_size)
    claimed = [
        m
        for batch, _ in intake.batches
        for m in claim_batch(engine, campaign.id, batch, token=CLAIM)
    ]
    assert len(claimed) == total, "every row of the scene must be a recipient"
    plan = [status for status, count in outcomes.items() for _ in range(count)]
    random.Random(seed).shuffle(plan)
    chosen: dict[str, list[int]] = {}
    for message, status in zip(claimed, plan, strict=True):
        chosen.setdefault(status, []).append(message.id)
    given_back = chosen.get("queued", []) + chosen.get("cancelled", [])
    assert handed_back <= len(given_back), "only what is given back can be handed back"
    mark_handed(engine, given_back[:handed_back], CLAIM)
    release(engine, given_back)
    for message_id in chosen.get("expired", []):  # its validity passed while it waited
        record_outcome(engine, message_id, Status.EXPIRED, "worker", CODES["expired"])
    handed = [i for s in ("sent", "delivered", "undelivered", "failed", "unknown")
              for i in chosen.get(s, [])]  # fmt: skip
    mark_handed(engine, handed, CLAIM)
    for status in ("failed", "unknown"):
        for message_id in chosen.get(status, []):
            record_outcome(engine, message_id, Status(status), "worker", CODES[status])
    taken = [i for s in ("sent", "delivered", "undelivered") for i in chosen.get(s, [])]
    record_sent(engine, campaign.id, [(i, f"SB{i:08d}") for i in taken])
    for status in ("delivered", "undelivered"):
        for message_id in chosen.get(status, []):
            apply_receipt(
                engine, "sandbox", f"SB{message_id:08d}", Status(status), CODES.get(status)
            )
    if outcomes.get("cancelled"):
        cancel_campaign(engine, campaign.id)
    counts = {s.value: n for s, n in status_counts(engine, campaign.id).items() if n}
    assert counts == {s: n for s, n in outcomes.items() if n}, counts
    return counts


def spread(engine: sa.Engine, campaign_id: str, start: datetime, hours: float) -> None:
    """Give the campaign the times a real morning would: launched at ``start`` (aware),
    its sends spread over ``hours`` in message order, each final receipt seconds to
    minutes after its send, what was given back ended (cancelled) with the last of them;
    the events carry the same times. For the screenshots, on a scratch SQLite ledger
    before its events are sealed (PostgreSQL refuses to change an event)."""
    draw = random.Random(3)
    key = key_of(campaign_id)
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(messages.c.id, messages.c.status, messages.c.sent_at, messages.c.handed_at)
            .where(messages.c.campaign_key == key)
            .order_by(messages.c.id)
        ).all()
        tried = [row for row in found if row.handed_at is not None]
        step = timedelta(hours=hours) / max(1, len(tried))
        begun = start + timedelta(minutes=2)
        ended, times = begun, {}
        for n, row in enumerate(tried):
            at = begun + step * n + timedelta(seconds=draw.uniform(0, 5))
            final = None
            if Status(row.status) in FINAL:
                final = at + timedelta(seconds=draw.uniform(3, 240 if row.sent_at else 1))
                ended = max(ended, final)
            times[row.id] = (at, final)
            conn.execute(
                messages.update()
                .where(messages.c.id == row.id)
                .values(
                    handed_at=at,
                    sent_at=at if row.sent_at else None,
                    final_at=final,
                    updated_at=final or at,
                )
            )
        for row in found:
            if row.handed_at is None:  # given back, expired or cancelled: when it stopped
                times[row.id] = (begun, ended)
                conn.execute(
                    messages.update()
                    .where(messages.c.id == row.id, messages.c.final_at.is_not(None))
                    .values(final_at=ended, updated_at=ended)
                )
        for event_id, message_id, to_status in conn.execute(
            sa.select(events.c.id, events.c.message_id, events.c.to_status).where(
                events.c.campaign_id == campaign_id
            )
        ).all():
            if message_id is None:  # the launch, or an operator's cancel at the end
                at = start if to_status == Status.QUEUED.value else ended
            else:
                sent, final = times[message_id]
                at = final if to_status in FINAL and final else sent
            conn.execute(events.update().where(events.c.id == event_id).values(at=at))
        launched, until = conn.execute(
            sa.select(campaigns.c.created_at, campaigns.c.valid_until).where(campaigns.c.key == key)
        ).one()
        conn.execute(
            campaigns.update()
            .where(campaigns.c.key == key)
            .values(created_at=start, valid_until=start + (until - launched))
        )
