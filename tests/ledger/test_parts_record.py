"""Messages sent as several submissions: the rule that combines their parts' receipts
into the message's state (``ledger.parts.combine``, row by row), the parts recorded with
the send (``ledger.handover.record_sent``) on both ledgers and through the hot path's
autocommit engine, replay-safe, and migration 0009 over a ledger at 0008."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from campaigns.status import Status
from ledger.db import make_engine, statement_engine
from ledger.handover import record_sent
from ledger.messages import record_outcome
from ledger.migrate import HEAD, MIGRATIONS, current_revision, upgrade
from ledger.parts import Decision, PartState, combine
from ledger.schema import message_parts
from tests.ledger.parts_scenes import message, parts_of
from tests.ledger.receipt_scenes import SPEC, claimed

D, U, X, F, K = (
    Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.FAILED, Status.UNKNOWN,
)  # fmt: skip


def _p(status: Status | None, code: str | None = None) -> PartState:
    return PartState(status, code)


@pytest.mark.parametrize(
    ("parts", "decided"),
    [
        # every part delivered
        ([_p(D), _p(D), _p(D)], Decision(D)),
        ([_p(D, "000"), _p(D)], Decision(D)),  # a delivered part's code explains nothing
        # some part without its final receipt, none failed: nothing yet
        ([_p(D), _p(D), _p(None)], None),
        ([_p(None), _p(None)], None),
        ([_p(K), _p(None)], None),
        # a failed part decides at once, with its code, whatever the others
        ([_p(D), _p(U, "E-2"), _p(D)], Decision(U, "E-2")),
        ([_p(None), _p(X, "X-2"), _p(None)], Decision(X, "X-2")),
        ([_p(K), _p(F, "F-2")], Decision(F, "F-2")),
        ([_p(U, None), _p(D)], Decision(U, None)),
        # several failed: the first in the order their receipts arrived
        ([_p(X, "X-3"), _p(U, "U-1"), _p(None)], Decision(X, "X-3")),
        ([_p(D), _p(U, "U-1"), _p(X, "X-3")], Decision(U, "U-1")),
        # every part final, delivered and unknown mixed (or unknown alone)
        ([_p(D), _p(K), _p(D)], Decision(K)),
        ([_p(K), _p(K)], Decision(K)),
        # nothing to combine
        ([], None),
    ],
)
def test_the_rule_that_combines_parts(parts, decided) -> None:
    assert combine(parts) == decided


def _all_parts(engine) -> list[tuple]:
    query = sa.select(
        message_parts.c.message_id,
        message_parts.c.part,
        message_parts.c.provider,
        message_parts.c.provider_message_id,
        message_parts.c.status,
    ).order_by(message_parts.c.message_id, message_parts.c.part)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


@pytest.fixture(params=["engine", "hot path"])
def recorder(request, engine):
    """The ledger ``record_sent`` writes to: the test's engine, or the sending hot path's
    (on PostgreSQL in autocommit: each statement its own transaction)."""
    if request.param == "engine":
        yield engine
        return
    hot = statement_engine(engine)
    yield hot
    if hot is not engine:
        hot.dispose()


def test_each_part_is_recorded_with_the_send_and_a_replay_adds_nothing(engine, recorder):
    one, two, whole = claimed(engine, 3)
    parts = {one: ["A1", "A2", "A3"], two: ["B1", "B2"], whole: ["C1"]}
    sent = [(one, "A1"), (two, "B1"), (whole, "C1")]
    assert record_sent(recorder, SPEC.id, sent, parts) == 3
    expected = [
        (one, 1, SPEC.provider, "A1", None),
        (one, 2, SPEC.provider, "A2", None),
        (one, 3, SPEC.provider, "A3", None),
        (two, 1, SPEC.provider, "B1", None),
        (two, 2, SPEC.provider, "B2", None),
    ]  # a message of one id is a message sent whole: no parts
    assert _all_parts(engine) == expected
    assert message(engine, one) == ("sent", None)
    # The same record again (a spool replayed after all, a retried flush): nothing added,
    # and no error for parts already there.
    assert record_sent(recorder, SPEC.id, sent, {one: ["A1", "Z2", "Z3"], two: ["B1", "B2"]}) == 0
    assert _all_parts(engine) == expected


def test_parts_are_recorded_for_a_message_already_past_sending(engine, recorder):
    """The reaper made it ``unknown`` before the answer was recorded: it keeps its
    status, and gets its provider id and its parts, so that their receipts land."""
    (late,) = claimed(engine, 1)
    record_outcome(engine, late, Status.UNKNOWN, "reaper", "claim_abandoned")
    assert record_sent(recorder, SPEC.id, [(late, "L1")], {late: ["L1", "L2"]}) == 0
    assert message(engine, late) == ("unknown", "claim_abandoned")
    assert parts_of(engine, late) == [(1, "L1", None, None), (2, "L2", None, None)]


def test_an_id_repeated_by_the_smsc_does_not_fail_the_record(engine, recorder):
    one, two = claimed(engine, 2)
    parts = {one: ["R1", "R1"], two: ["R2", "R1"]}
    assert record_sent(recorder, SPEC.id, [(one, "R1"), (two, "R2")], parts) == 2
    assert [pid for *_, pid, _ in _all_parts(engine)] == ["R1", "R1", "R2", "R1"]


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


def test_messages_sent_whole_cost_the_hot_path_no_statement_more(engine):
    """On PostgreSQL the send's record stays one statement, parts or not (they ride in
    it); on SQLite parts add one insert, and only when there are parts."""
    a, b, c, d = claimed(engine, 4)
    whole = _statements(engine, lambda: record_sent(engine, SPEC.id, [(a, "W1"), (b, "W2")]))
    nothing_split = _statements(
        engine, lambda: record_sent(engine, SPEC.id, [(c, "W3")], {c: ["W3"]})
    )
    split = _statements(
        engine, lambda: record_sent(engine, SPEC.id, [(d, "S1")], {d: ["S1", "S2"]})
    )
    if engine.dialect.name == "postgresql":
        assert whole == nothing_split == split == 1
    else:
        assert whole == nothing_split == split - 1
    assert len(_all_parts(engine)) == 2


def test_migration_0009_over_a_ledger_at_0008(ledger_url) -> None:
    engine = make_engine(ledger_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0008")
        assert current_revision(engine) == "0008"
        with engine.connect() as conn:
            before = set(sa.inspect(conn).get_table_names())
        assert {"message_parts", "inbound_messages"}.isdisjoint(before)
        assert upgrade(engine) == ("0008", HEAD)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert {"message_parts", "inbound_messages"} <= set(inspector.get_table_names())
            indexes = {i["name"]: i for i in inspector.get_indexes("message_parts")}
            uniques = inspector.get_unique_constraints("message_parts")
        lookup = indexes["ix_message_parts_provider_provider_message_id"]
        assert lookup["column_names"] == ["provider", "provider_message_id"]
        assert not lookup["unique"]  # a repeated id must not fail a record
        assert [u["column_names"] for u in uniques] == [["message_id", "part"]]
        with engine.begin() as conn:  # and down again, for an operator who must
            config.attributes["connection"] = conn
            command.downgrade(config, "0008")
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == before
    finally:
        engine.dispose()


def test_a_part_needs_its_message(engine) -> None:
    """The foreign key holds on both ledgers (SQLite's is switched on by the engine)."""
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            message_parts.insert().values(
                message_id=10**9,
                part=1,
                provider="sandbox",
                provider_message_id="P",
                updated_at=sa.func.now(),
            )
        )
