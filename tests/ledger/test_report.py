"""The report's aggregation on both backends: in SQL, and adding up."""

from __future__ import annotations

import pytest

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.handover import record_sent
from ledger.messages import apply_receipt, claim_batch, record_outcome
from ledger.report import ReportError, build
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
    for breakdown in ("by_column", "by_carrier", "by_provider"):
        assert sum(sum(v.values()) for v in data[breakdown].values()) == 6, breakdown
    assert set(data["by_carrier"]) == {"viettel", "vinaphone", "mobifone", "KR"}
    parts = data["parts_billed"]  # the five the provider took, not the refused one
    assert parts == 5 * 3 and data["cost"] == 800 * 15  # five on carriers priced 800
    assert {(f["code"], f["recipients"]) for f in data["failures"]} == {("108", 1), ("001", 1)}
    assert sum(sum(v.values()) for v in data["by_hour"].values()) == 5  # the sent ones


def test_a_column_the_list_never_had_and_an_empty_campaign_are_named(engine):
    campaign(engine)
    with pytest.raises(ReportError, match="--by 'ward': the list has no such column"):
        build(engine, SPEC.id, by="ward")
    assert build(engine, SPEC.id, by="Họ và tên").by == "Họ và tên"
    empty = SPEC.model_copy(update={"id": "empty-campaign"})
    record(engine, empty, [ListRow(2, "not a number", ("x", "y"))], COLUMNS)
    with pytest.raises(ReportError, match="no recipients"):
        build(engine, empty.id)
