"""The report's aggregation on both backends: in SQL, and adding up."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.daily import VIETNAM, build_daily
from ledger.handover import record_sent
from ledger.messages import apply_receipt, claim_batch, record_outcome
from ledger.report import ReportError, build
from ledger.schema import messages
from tests.helpers import record
from tests.ledger.test_ledger import SPEC

COLUMNS = ["Họ và tên", "Huyện/Thành phố"]
DISTRICTS = ["Ninh Hải", "Bác Ái", "Ninh Hải", "Thuận Nam", "Ninh Hải", "Bác Ái"]


def campaign(engine) -> None:
    phones = ["0961234567", "0912345678", "0901234567", "0987654321", "0971234567", "+821012345678"]
    rows = [
        ListRow(i + 2, phone, (f"Người {i}", district))
        for i, (phone, district) in enumerate(zip(phones, DISTRICTS, strict=True))
    ]
    record(engine, SPEC, rows, COLUMNS)
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in claimed[:5]])
    record_outcome(engine, claimed[5].id, Status.FAILED, "worker", "108")
    for message in claimed[:3]:
        apply_receipt(engine, "sandbox", f"P{message.id}", Status.DELIVERED, None)
    apply_receipt(engine, "sandbox", f"P{claimed[3].id}", Status.UNDELIVERED, "001")


def test_every_recipient_is_counted_once_and_the_breakdowns_add_up(engine):
    campaign(engine)
    data = build(engine, SPEC.id).as_dict()
    assert data["statuses"] == {"delivered": 3, "failed": 1, "sent": 1, "undelivered": 1}
    assert data["recipients"] == 6 and data["delivery_rate"] == 0.75
    assert data["by"] == "Huyện/Thành phố"  # the district column, found by its Vietnamese name
    assert data["by_column"]["Ninh Hải"] == {"delivered": 2, "sent": 1}
    assert data["by_column"]["Bác Ái"] == {"delivered": 1, "failed": 1}
    for breakdown in ("by_column", "by_carrier", "by_provider", "by_hour"):
        assert sum(sum(v.values()) for v in data[breakdown].values()) == 6, breakdown
    assert set(data["by_carrier"]) == {"viettel", "vinaphone", "mobifone", "KR"}
    parts = data["parts_billed"]  # the five the provider took, not the refused one
    assert parts == 5 * 3 and data["cost"] == 800 * 15  # five on carriers priced 800
    assert {(f["code"], f["recipients"]) for f in data["failures"]} == {("108", 1), ("001", 1)}
    # The five a provider took, at their hour; the refused one was never handed over.
    assert sum(sum(v.values()) for h, v in data["by_hour"].items() if h != "not_sent") == 5
    assert data["by_hour"]["not_sent"] == {"failed": 1}
    assert data["state"] == "running" and data["reached"] == 3


def test_a_column_the_list_never_had_and_an_empty_campaign_are_named(engine):
    campaign(engine)
    with pytest.raises(ReportError, match="--by 'ward': the list has no such column"):
        build(engine, SPEC.id, by="ward")
    assert build(engine, SPEC.id, by="Họ và tên").by == "Họ và tên"
    empty = SPEC.model_copy(update={"id": "empty-campaign"})
    record(engine, empty, [ListRow(2, "not a number", ("x", "y"))], COLUMNS)
    with pytest.raises(ReportError, match="no recipients"):
        build(engine, empty.id)


def test_the_timeline_counts_sends_and_deliveries_per_step(engine):
    campaign(engine)
    start = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)  # 08:00 in Vietnam
    # Sends spread over two hours (in message order: three delivered, one undelivered,
    # one still sent); each final receipt 30 s after its send.
    sent = [timedelta(seconds=s) for s in (5, 70, 75, 3600, 7195)]
    with engine.begin() as conn:
        ids = sorted(
            conn.execute(
                sa.select(messages.c.id, messages.c.status).where(messages.c.sent_at.is_not(None))
            ).all()
        )
        for (message_id, status), offset in zip(ids, sent, strict=True):
            final = start + offset + timedelta(seconds=30) if status != "sent" else None
            conn.execute(
                messages.update()
                .where(messages.c.id == message_id)
                .values(sent_at=start + offset, final_at=final)
            )
    timeline = build(engine, SPEC.id).timeline
    assert timeline is not None
    assert timeline.step == 60  # two hours in at most 120 steps
    assert timeline.start == start
    assert len(timeline.sent) == len(timeline.delivered) == 120  # to the last move
    assert sum(timeline.sent) == 5 and sum(timeline.delivered) == 3
    assert timeline.sent[0] == 1 and timeline.sent[1] == 2 and timeline.sent[60] == 1
    assert timeline.sent[119] == 1
    # The three delivered 30 s after their sends (at 5, 70 and 75 s): steps 0 and 1.
    assert timeline.delivered[:2] == [1, 2]


def test_the_daily_update_covers_the_campaigns_active_that_day(engine):
    first = datetime.now(VIETNAM).date()
    campaign(engine)
    other = SPEC.model_copy(update={"id": "quiet-campaign"})
    record(engine, other, [ListRow(2, "0961234000", ("x", "Bác Ái"))], COLUMNS)
    last = datetime.now(VIETNAM).date()
    # The moves were on one day, or on two when Vietnam's midnight passed while they were
    # recorded: the figures asserted are those days' together, so the hour does not matter.
    dailies = [build_daily(engine, day).as_dict() for day in sorted({first, last})]
    actives = [active for daily in dailies for active in daily["campaigns"]]
    assert {active["campaign"] for active in actives} == {SPEC.id}  # planned, never sent: not
    moves = sum((Counter(active["that_day"]) for active in actives), Counter())
    assert moves == {"delivered": 3, "failed": 1, "sent": 5, "undelivered": 1}
    assert actives[-1]["standing"] == {"delivered": 3, "failed": 1, "sent": 1, "undelivered": 1}
    assert actives[-1]["recipients"] == 6
    assert actives[-1]["state"] == "running"  # one still waits for its receipt
    if len(actives) == 1:
        assert actives[0]["delivery_rate_that_day"] == 0.75
    for daily in dailies:
        assert Counter(daily["that_day"]) == sum(
            (Counter(a["that_day"]) for a in daily["campaigns"]), Counter()
        )
    hours = [h for daily in dailies for h in daily["by_hour"].values()]
    assert sum(h.get("sent", 0) for h in hours) == 5
    assert sum(h.get("delivered", 0) for h in hours) == 3
    assert build_daily(engine, first - timedelta(days=1)).campaigns == []


def test_final_times_before_the_first_send_still_give_a_timeline(engine):
    """An edited ledger (final_at set back 200 days) once made the report an IndexError."""
    campaign(engine)
    with engine.begin() as conn:
        conn.execute(messages.update().values(final_at=datetime.now(UTC) - timedelta(days=200)))
    data = build(engine, SPEC.id).as_dict()
    assert sum(data["timeline"]["sent"]) == 5


def test_a_breakdown_by_a_column_of_numbers_never_shows_a_whole_number(engine):
    """`--by` a column that holds phone numbers (a relative's, one written in a note):
    each is masked in the breakdown, and the counts still add up."""
    columns = ["Họ và tên", "SĐT người thân"]
    relatives = ["0987654321", "0987 654 321", "Gọi 0912 111 222 sau 5h", ""]
    phones = ["0961234567", "0912345678", "0901234567", "0971234567"]
    rows = [
        ListRow(i + 2, phone, (f"Người {i}", relative))
        for i, (phone, relative) in enumerate(zip(phones, relatives, strict=True))
    ]
    record(engine, SPEC, rows, columns)
    data = build(engine, SPEC.id, by="SĐT người thân").as_dict()
    shown = " ".join(str(group) for group in data["by_column"])
    for whole in ("0987654321", "987654321", "0912 111 222", "0912111222"):
        assert whole not in shown, whole
    assert "Gọi " in shown and " sau 5h" in shown  # the rest of the note is kept
    assert sum(sum(v.values()) for v in data["by_column"].values()) == 4
