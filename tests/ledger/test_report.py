"""The report's aggregation on both backends: in SQL, and adding up."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger import schema
from ledger.handover import record_sent
from ledger.messages import apply_receipt, claim_batch, record_outcome
from ledger.reports.campaign import ReportError, build
from ledger.reports.daily import VIETNAM, build_daily
from ledger.schema import events, messages
from tests.helpers import record
from tests.ledger.test_ledger import SPEC

COLUMNS = ["Họ và tên", "Huyện/Thành phố"]
DISTRICTS = ["Ninh Hải", "Bác Ái", "Ninh Hải", "Thuận Nam", "Ninh Hải", "Bác Ái"]


def campaign(
    engine, before_receipts: Callable[[], None] = lambda: None, failure_code: str = "108"
) -> None:
    """Six recipients: five taken by the provider (three delivered, one undelivered, one
    still sent), one refused; ``before_receipts`` runs between the sends and the receipts."""
    phones = ["0961234567", "0912345678", "0901234567", "0987654321", "0971234567", "+821012345678"]
    rows = [
        ListRow(i + 2, phone, (f"Người {i}", district))
        for i, (phone, district) in enumerate(zip(phones, DISTRICTS, strict=True))
    ]
    record(engine, SPEC, rows, COLUMNS)
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in claimed[:5]])
    record_outcome(engine, claimed[5].id, Status.FAILED, "worker", failure_code)
    before_receipts()
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


class LedgerClock:
    """The ledger's clock (``ledger.schema.now``) as the test sets it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def ledger_clock(monkeypatch, at: datetime) -> LedgerClock:
    """Give the ledger the test's clock: ``now`` is imported by name where it is used,
    so every loaded module holding ``ledger.schema.now`` gets the test's instead."""
    from ledger import intake, receipts  # noqa: F401 - loaded, so that theirs is replaced too

    clock, real = LedgerClock(at), schema.now
    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", {}).get("now") is real:
            monkeypatch.setattr(module, "now", clock)
    return clock


def test_the_daily_update_counts_each_move_on_its_day_in_vietnam(engine, monkeypatch):
    """Vietnam's day, not UTC's: the sends are recorded a second before midnight in
    Vietnam and the receipts at midnight (17:00 UTC, the same UTC day), on a clock the
    test sets, so no run straddles a real midnight."""
    midnight = datetime(2026, 11, 29, tzinfo=VIETNAM)
    clock = ledger_clock(monkeypatch, midnight - timedelta(seconds=1))

    def at_midnight() -> None:
        clock.at = midnight

    campaign(engine, before_receipts=at_midnight)
    other = SPEC.model_copy(update={"id": "quiet-campaign"})
    record(engine, other, [ListRow(2, "0961234000", ("x", "Bác Ái"))], COLUMNS)
    with engine.connect() as conn:  # every move on the test's clock, none on the real one
        assert set(conn.scalars(sa.select(events.c.at).distinct())) == {
            midnight - timedelta(seconds=1),
            midnight,
        }
    day = date(2026, 11, 28)
    before, evening, morning, after = (
        build_daily(engine, day + timedelta(days=n)).as_dict() for n in (-1, 0, 1, 2)
    )
    assert before["campaigns"] == [] and after["campaigns"] == []
    (sending,) = evening["campaigns"]
    # The quiet campaign, launched at midnight and never sent (waiting for its hours, a
    # halt …): in its day's update all the same, with nothing moved and one recipient.
    receiving, quiet = morning["campaigns"]
    assert (quiet["campaign"], quiet["that_day"], quiet["standing"]) == (
        "quiet-campaign", {}, {"queued": 1}
    )  # fmt: skip
    assert sending["campaign"] == receiving["campaign"] == SPEC.id
    assert sending["that_day"] == evening["that_day"] == {"failed": 1, "sent": 5}
    assert receiving["that_day"] == morning["that_day"] == {"delivered": 3, "undelivered": 1}
    assert sending["delivery_rate_that_day"] is None  # no receipt that evening
    assert receiving["delivery_rate_that_day"] == 0.75
    assert evening["by_hour"] == {"23": {"sent": 5}}  # the chart's two: sent, delivered
    assert morning["by_hour"] == {"0": {"delivered": 3}}
    for active in (sending, receiving):  # where every recipient stands now, either day
        assert active["standing"] == {"delivered": 3, "failed": 1, "sent": 1, "undelivered": 1}
        assert active["recipients"] == 6
        assert active["state"] == "running"  # one still waits for its receipt


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


def test_parts_billed_and_cost_count_what_a_provider_took_whatever_became_of_it(engine):
    """Texts of 1, 2, 4, 3 and 2 parts, each ending differently: delivered, undelivered,
    unknown (timed out: it may well have gone out, and the provider bills it), failed
    (refused: never billed) and still sent. Each carrier has its own price, so the cost
    names which messages were counted. Worked out by hand from GSM-7's rule (160
    characters in one part, 153 per part beyond): 100 chars -> 1, 200 -> 2, 500 -> 4,
    400 -> 3, 300 -> 2."""
    from campaigns.spec import CampaignSpec
    from ledger.handover import mark_handed
    from ledger.summary import summarise

    prices = {"currency": "VND", "default": 900, "mobifone": 600, "vinaphone": 700,
              "viettel": 800}  # fmt: skip
    spec = CampaignSpec.model_validate(
        {**SPEC.model_dump(mode="json"), "messages": {"vi": "{name}"}, "prices": prices}
    )
    scene = [  # (phone, characters, what becomes of it)
        ("0901234567", 100, Status.DELIVERED),  # MobiFone, 1 part
        ("0912345678", 200, Status.UNDELIVERED),  # VinaPhone, 2 parts
        ("0961234567", 500, Status.UNKNOWN),  # Viettel, 4 parts
        ("0971234567", 400, Status.FAILED),  # Viettel, 3 parts: refused, not billed
        ("0931234567", 300, Status.SENT),  # MobiFone, 2 parts, no receipt yet
    ]
    rows = [ListRow(i + 2, phone, ("x" * size, "")) for i, (phone, size, _) in enumerate(scene)]
    record(engine, spec, rows, COLUMNS)
    by_phone = {m.recipient: m for m in claim_batch(engine, spec.id, 1)}
    claimed = [by_phone[f"+84{phone[1:]}"] for phone, _, _ in scene]
    assert [m.parts for m in claimed] == [1, 2, 4, 3, 2]
    mark_handed(engine, [m.id for m in claimed], claimed[0].claim)
    for message, (_, _, outcome) in zip(claimed, scene, strict=True):
        if outcome in (Status.UNKNOWN, Status.FAILED):
            record_outcome(engine, message.id, outcome, "worker", "read_timeout")
        else:
            record_sent(engine, spec.id, [(message.id, f"P{message.id}")])
            if outcome != Status.SENT:
                apply_receipt(engine, "sandbox", f"P{message.id}", outcome, None)

    billed = 1 + 2 + 4 + 2  # everything but the failed one
    cost = 1 * 600 + 2 * 700 + 4 * 800 + 2 * 600
    data = build(engine, spec.id).as_dict()
    assert data["statuses"] == {"delivered": 1, "failed": 1, "sent": 1, "undelivered": 1,
                                "unknown": 1}  # fmt: skip
    assert (data["parts_billed"], data["cost"]) == (billed, cost)
    assert summarise(engine, spec.id).as_dict()["parts"] == billed  # `loa campaign status`
