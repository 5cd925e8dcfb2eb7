"""The drainer's passes (``ledger.receipts.drain``, ``drain_all``) on both ledgers, the
clock held still: which receipts a pass takes, in what order, how long one waits for its
message, and how a receipt that cannot be applied is set aside alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from campaigns.status import Status
from ledger import receipts as inbox_module
from ledger.receipts import drain, drain_all, store
from ledger.schema import receipts
from tests.ledger.receipt_scenes import T0, Clock, inbox, receipt, sent, spec_for, spoil, statuses

NOTHING = {"applied": 0, "ignored": 0, "waiting": 0, "unmatched": 0, "flagged": 0}


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(inbox_module, "now", clock)
    return clock


def test_a_receipt_for_an_unrecorded_id_waits_a_day_then_is_unmatched(engine, clock):
    store(engine, [receipt("SM7", Status.DELIVERED)])
    clock.advance(timedelta(days=1) - timedelta(microseconds=1))
    assert drain(engine, 10) == {**NOTHING, "waiting": 1}
    assert inbox(engine) == [("SM7", "waiting", None)]  # not settled: no time of settling
    clock.advance(timedelta(microseconds=1))  # a day to the microsecond: given up
    assert drain(engine, 10) == {**NOTHING, "unmatched": 1}
    assert inbox(engine) == [("SM7", "unmatched", clock.at)]  # kept, never guessed


def test_waiting_receipts_are_retried_a_quarter_of_a_pass_at_a_time(engine, clock):
    store(engine, [receipt(f"SM{i}", Status.DELIVERED) for i in range(4)])
    assert drain(engine, 100)["waiting"] == 4
    assert drain(engine, 8)["waiting"] == 2  # 8 // 4
    assert drain(engine, 4)["waiting"] == 1  # 4 // 4
    assert drain(engine, 2)["waiting"] == 1  # at least one, however small the pass


def test_waiting_receipts_take_turns_so_none_that_never_match_blocks_the_rest(engine, clock):
    """Four receipts for ids no message will ever have wait ahead of one whose send is
    recorded later: each pass tries the least recently tried, so that one's turn comes
    within five passes of one (it once never came: the oldest by id were tried again
    and again, for a day)."""
    store(engine, [receipt(f"X{i}", Status.DELIVERED) for i in range(4)])
    assert drain(engine, 100)["waiting"] == 4
    clock.advance(timedelta(seconds=1))
    store(engine, [receipt("SM9", Status.DELIVERED)])
    assert drain(engine, 100)["waiting"] == 5  # all tried at this same moment
    ids = sent(engine, ["SM9"])
    passes = []
    for _ in range(5):
        clock.advance(timedelta(seconds=1))
        passes.append(drain(engine, 4))  # one waiting receipt a pass (4 // 4)
    assert [p["applied"] for p in passes] == [0, 0, 0, 0, 1]
    assert statuses(engine) == {ids["SM9"]: "delivered"}


def test_a_pass_takes_new_receipts_oldest_first_up_to_its_limit(engine, clock):
    ids = sent(engine, ["P1", "P2", "P3"])
    store(engine, [receipt(pid, Status.DELIVERED) for pid in ids])
    assert drain(engine, 2) == {**NOTHING, "applied": 2}
    assert [state for _, state, _ in inbox(engine)] == ["applied", "applied", "pending"]
    assert statuses(engine) == {ids["P1"]: "delivered", ids["P2"]: "delivered", ids["P3"]: "sent"}


def test_a_waiting_receipt_goes_before_a_newer_one_for_the_same_message(engine, clock):
    """``delivered`` overtook the send's answer and waited; a carrier's late
    ``undelivered`` arrived after the answer was recorded. Applied in the order received,
    the message is delivered and the late one is ignored."""
    store(engine, [receipt("SM1", Status.DELIVERED)])
    assert drain(engine, 10)["waiting"] == 1
    ids = sent(engine, ["SM1"])
    store(engine, [receipt("SM1", Status.UNDELIVERED, code="30003")])
    assert drain(engine, 10) == {**NOTHING, "applied": 1, "ignored": 1}
    assert statuses(engine) == {ids["SM1"]: "delivered"}


def test_a_receipt_moves_only_the_message_of_its_own_provider(engine, clock):
    """Two providers may hand out the same id: a receipt names its provider too."""
    ours = sent(engine, ["P1"], spec_for("sandbox", "ours"))
    theirs = sent(engine, ["P1"], spec_for("gateway", "theirs"), first=1)
    store(engine, [receipt("P1", Status.DELIVERED, provider="gateway")])
    assert drain(engine, 10)["applied"] == 1
    assert statuses(engine) == {ours["P1"]: "sent", theirs["P1"]: "delivered"}


def test_every_pass_until_none_is_left_is_counted(engine, clock):
    ids = sent(engine, [f"P{i}" for i in range(5)])
    store(engine, [receipt(pid, Status.DELIVERED) for pid in ids])
    assert drain_all(engine, 2) == {**NOTHING, "applied": 5}  # passes of 2, 2 and 1
    assert set(statuses(engine).values()) == {"delivered"}


def test_receipts_that_cannot_be_applied_are_flagged_alone(engine, clock):
    """A receipt stored with a status no rule knows fails its pass; the pass is then made
    one receipt at a time, the same receipts (new ones up to the limit, a quarter as many
    waiting), and only the failing ones are set aside, said in a warning."""
    store(engine, [receipt(f"W{i}", Status.DELIVERED) for i in range(3)])
    assert drain(engine, 100)["waiting"] == 3
    order = ["B1", "G1", "G2", "B2", "G3", "B3", "G4"]
    ids = sent(engine, order)
    store(engine, [receipt(pid, Status.DELIVERED) for pid in order])
    for bad in ("B1", "B2", "B3"):
        spoil(engine, bad)
    clock.advance(timedelta(minutes=5))
    with capture_logs() as logs:
        assert drain(engine, 4) == {**NOTHING, "applied": 2, "waiting": 1, "flagged": 2}
    with engine.connect() as conn:
        numbers = dict(conn.execute(sa.select(receipts.c.provider_message_id, receipts.c.id)).all())
    assert logs == [
        {"event": "receipts.flagged", "log_level": "warning", "receipt": numbers[bad]}
        | {"error": "ValueError"}
        for bad in ("B1", "B2")
    ]
    # The next pass: G3, B3, G4 new, and two of the three waiting (8 // 4).
    assert drain(engine, 8) == {**NOTHING, "applied": 2, "waiting": 2, "flagged": 1}
    states = {pid: (state, at) for pid, state, at in inbox(engine)}
    assert {pid: states[pid] for pid in order} == {
        pid: ("flagged" if pid.startswith("B") else "applied", clock.at) for pid in order
    }
    assert statuses(engine) == {
        ids[pid]: "sent" if pid.startswith("B") else "delivered" for pid in order
    }


def _statements(engine, run) -> int:
    """How many statements ``run`` sent to the ledger."""
    sent_statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        sent_statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(sent_statements)


def test_a_pass_takes_as_many_statements_for_forty_receipts_as_for_four(engine, clock):
    """Applied in bulk: a pass of new, late and unmatched receipts reads and writes in a
    few statements, not a few per receipt."""

    def scene(count: int, campaign: str) -> int:
        pids = [f"{campaign}-{i}" for i in range(count)]
        sent(engine, pids, spec_for("sandbox", campaign))
        late = [receipt(pid, Status.SENT, seq=1) for pid in pids[: count // 2]]
        unknown = [receipt(f"{campaign}-x{i}", Status.DELIVERED) for i in range(count // 2)]
        store(engine, [receipt(pid, Status.DELIVERED) for pid in pids] + late + unknown)
        return _statements(engine, lambda: drain(engine, 1000))

    assert scene(4, "small") == scene(40, "large")
    assert drain(engine, 1000)["waiting"] == 2 + 20  # the unknown ids, retried


def test_an_empty_inbox_counts_nothing_and_a_last_empty_pass_adds_nothing(engine, clock):
    assert drain(engine, 10) == NOTHING
    ids = sent(engine, [f"E{i}" for i in range(4)])
    store(engine, [receipt(pid, Status.DELIVERED) for pid in ids])
    assert drain_all(engine, 2) == {**NOTHING, "applied": 4}  # passes of 2, 2, then none
