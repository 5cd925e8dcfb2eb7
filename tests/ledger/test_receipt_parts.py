"""Receipts for the parts of a message sent as several submissions (an SMPP long message:
one submit_sm per part, one receipt per part), through the real drainer on both ledgers:
each receipt is recorded on its part, forward only, and the message's state follows
from all its parts (``ledger.parts.combine``, tested row by row in
``test_parts_record.py``); part 1's receipt, whose id is also the message's own, never
decides the message alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger import parts as parts_module
from ledger import receipts as inbox_module
from ledger.handover import record_sent
from ledger.receipts import drain, store
from tests.ledger.parts_scenes import message, parts_of, receipt_events, sent_in_parts
from tests.ledger.receipt_scenes import (
    SPEC,
    T0,
    Clock,
    claimed,
    inbox,
    receipt,
    spec_for,
    statuses,
)

NOTHING = {"applied": 0, "ignored": 0, "waiting": 0, "unmatched": 0, "flagged": 0}
ARRIVED = "2024-03-08T09:30:00+00:00"  # T0, as events write it


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(inbox_module, "now", clock)
    monkeypatch.setattr(parts_module, "now", clock)
    return clock


def test_a_message_is_delivered_once_every_part_is_and_not_before(engine, clock):
    (m,) = sent_in_parts(engine, [["A1", "A2", "A3"]])
    store(engine, [receipt("A1", Status.DELIVERED, raw="DELIVRD", code="000")])
    assert drain(engine, 10) == {**NOTHING, "applied": 1}
    # Part 1's id is the message's own too: it was recorded on part 1 and decided nothing.
    assert message(engine, m) == ("sent", None)
    assert parts_of(engine, m) == [
        (1, "A1", "delivered", "000"), (2, "A2", None, None), (3, "A3", None, None),
    ]  # fmt: skip
    store(engine, [receipt("A3", Status.DELIVERED, raw="DELIVRD")])
    assert drain(engine, 10) == {**NOTHING, "applied": 1}
    assert message(engine, m) == ("sent", None)
    store(engine, [receipt("A2", Status.DELIVERED, raw="DELIVRD", network="viettel")])
    assert drain(engine, 10) == {**NOTHING, "applied": 1}
    assert message(engine, m) == ("delivered", None)
    # One event, as a whole message's receipt writes it, naming the part that decided.
    assert receipt_events(engine, m) == [
        ("sent", "delivered", None, {"received_at": ARRIVED, "network": "viettel", "part": 2})
    ]
    assert [state for _, state, _ in inbox(engine)] == ["applied"] * 3


def test_an_undelivered_part_ends_the_message_with_its_code_whatever_the_others_say(engine, clock):
    (m,) = sent_in_parts(engine, [["B1", "B2", "B3"]])
    store(engine, [receipt("B2", Status.UNDELIVERED, raw="UNDELIV", code="E-2")])
    assert drain(engine, 10) == {**NOTHING, "applied": 1}
    assert message(engine, m) == ("undelivered", "E-2")  # the recipient cannot read it all
    store(engine, [receipt(pid, Status.DELIVERED, raw="DELIVRD") for pid in ("B1", "B3")])
    assert drain(engine, 10) == {**NOTHING, "applied": 2}  # recorded on their parts
    assert message(engine, m) == ("undelivered", "E-2")
    assert [status for _, _, status, _ in parts_of(engine, m)] == [
        "delivered", "undelivered", "delivered",
    ]  # fmt: skip
    assert receipt_events(engine, m) == [
        ("sent", "undelivered", "E-2", {"received_at": ARRIVED, "part": 2})
    ]


def test_of_two_failed_parts_the_first_receipt_to_arrive_decides(engine, clock):
    """Part 3's failure arrives before part 2's, in the same pass: part 3 decides."""
    (m,) = sent_in_parts(engine, [["C1", "C2", "C3"]])
    store(engine, [receipt("C3", Status.UNDELIVERED, code="U-3")])
    store(engine, [receipt("C2", Status.EXPIRED, code="X-2")])
    assert drain(engine, 10) == {**NOTHING, "applied": 2}
    assert message(engine, m) == ("undelivered", "U-3")
    assert [(to, code) for _, to, code, _ in receipt_events(engine, m)] == [("undelivered", "U-3")]


def test_a_part_without_its_receipt_keeps_the_message_sent(engine, clock):
    (m,) = sent_in_parts(engine, [["D1", "D2", "D3"]])
    store(engine, [receipt(pid, Status.DELIVERED, raw="DELIVRD") for pid in ("D1", "D2")])
    assert drain(engine, 10) == {**NOTHING, "applied": 2}
    assert message(engine, m) == ("sent", None)
    assert receipt_events(engine, m) == []


def test_a_part_ignores_what_is_not_final_and_keeps_its_first_final_status(engine, clock):
    """ACCEPTD or ENROUTE (``sent``) says nothing of the end; a second final receipt
    for a part that has one changes nothing."""
    (m,) = sent_in_parts(engine, [["E1", "E2"]])
    store(engine, [receipt("E1", Status.SENT, raw="ACCEPTD"), receipt("E2", Status.SENT)])
    assert drain(engine, 10) == {**NOTHING, "ignored": 2}
    assert parts_of(engine, m) == [(1, "E1", None, None), (2, "E2", None, None)]
    store(engine, [receipt("E1", Status.DELIVERED, raw="DELIVRD")])
    store(engine, [receipt("E1", Status.UNDELIVERED, raw="UNDELIV", code="late", seq=1)])
    assert drain(engine, 10) == {**NOTHING, "applied": 1, "ignored": 1}
    assert parts_of(engine, m)[0] == (1, "E1", "delivered", None)
    assert message(engine, m) == ("sent", None)
    store(engine, [receipt("E2", Status.DELIVERED, raw="DELIVRD")])
    assert drain(engine, 10)["applied"] == 1
    assert message(engine, m) == ("delivered", None)


def test_unknown_parts_make_the_message_unknown_until_a_real_status_corrects_them(engine, clock):
    (m,) = sent_in_parts(engine, [["F1", "F2", "F3"]])
    store(
        engine,
        [
            receipt("F1", Status.UNKNOWN, raw="UNKNOWN"),
            receipt("F2", Status.DELIVERED, raw="DELIVRD"),
            receipt("F3", Status.DELIVERED, raw="DELIVRD"),
        ],
    )
    assert drain(engine, 10) == {**NOTHING, "applied": 3}
    assert message(engine, m) == ("unknown", None)  # every part said, not all delivered
    store(engine, [receipt("F1", Status.DELIVERED, raw="DELIVRD", seq=1)])
    assert drain(engine, 10) == {**NOTHING, "applied": 1}  # a real status replaces unknown
    assert parts_of(engine, m)[0] == (1, "F1", "delivered", None)
    assert message(engine, m) == ("delivered", None)
    assert [(old, new) for old, new, _, _ in receipt_events(engine, m)] == [
        ("sent", "unknown"),
        ("unknown", "delivered"),
    ]


def test_a_receipt_before_the_send_was_recorded_waits_then_lands_on_its_part(engine, clock):
    (m,) = claimed(engine, 1)  # handed to the SMSC; its answer not recorded yet
    store(engine, [receipt("G2", Status.DELIVERED), receipt("G1", Status.DELIVERED)])
    assert drain(engine, 10) == {**NOTHING, "waiting": 2}
    record_sent(engine, SPEC.id, [(m, "G1")], {m: ["G1", "G2", "G3"]})
    clock.advance(timedelta(minutes=1))
    store(engine, [receipt("G3", Status.DELIVERED)])
    assert drain(engine, 8) == {**NOTHING, "applied": 3}  # one new, two waiting (8 // 4)
    assert [status for _, _, status, _ in parts_of(engine, m)] == ["delivered"] * 3
    assert message(engine, m) == ("delivered", None)


def test_a_message_sent_whole_is_decided_by_its_one_receipt_as_before(engine, clock):
    whole, single = sent_in_parts(engine, [["H1"], ["H2"]])
    assert parts_of(engine, whole) == parts_of(engine, single) == []  # one id: no parts
    store(engine, [receipt("H1", Status.UNDELIVERED, code="E1"), receipt("H2", Status.DELIVERED)])
    assert drain(engine, 10) == {**NOTHING, "applied": 2}
    assert message(engine, whole) == ("undelivered", "E1")
    assert message(engine, single) == ("delivered", None)


def test_an_id_the_smsc_repeated_goes_to_the_newest_part_that_has_it(engine, clock):
    """A broken SMSC handed out J2 twice: recorded all the same; its receipt lands on the
    later submission."""
    older, newer = sent_in_parts(engine, [["J1", "J2"], ["K1", "J2"]])
    store(engine, [receipt("J2", Status.DELIVERED)])
    assert drain(engine, 10)["applied"] == 1
    assert parts_of(engine, older)[1][2] is None
    assert parts_of(engine, newer)[1][2] == "delivered"


def _statements(engine, run) -> int:
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_pass_of_part_receipts_is_applied_in_bulk(engine, clock):
    """As many statements for the parts of forty messages as for four."""

    def scene(count: int, campaign: str) -> int:
        pids = [[f"{campaign}-{i}-{n}" for n in (1, 2)] for i in range(count)]
        sent_in_parts(engine, pids, spec_for(SPEC.provider, campaign))
        store(engine, [receipt(pid, Status.DELIVERED) for pair in pids for pid in pair])
        return _statements(engine, lambda: drain(engine, 1000))

    assert scene(4, "small") == scene(40, "large")
    assert set(statuses(engine).values()) == {"delivered"}
