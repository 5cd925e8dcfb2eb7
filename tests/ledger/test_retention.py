"""Retention on both backends: old numbers become keyed HMACs, personal list fields,
visitors and old event ids go, receipts' digests become keyed, the chain still verifies
and reports still build."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.arrivals import take_events, welcome_once
from ledger.chain import seal_all, verify
from ledger.handover import record_sent
from ledger.history import retained_campaigns
from ledger.messages import apply_receipt, claim_batch
from ledger.receipts import Inbound, digest, drain_all, store
from ledger.reports.campaign import build
from ledger.retention import (
    PREFIX,
    RetentionError,
    apply,
    kept_cells,
    kept_columns,
    pseudonym,
)
from ledger.schema import (
    RETAINED,
    arrival_events,
    messages,
    metadata,
    now,
    receipts,
    visitors,
)
from tests.helpers import backdate, record
from tests.ledger.test_finaliser import sent
from tests.ledger.test_ledger import SPEC

KEY = "khoá-bí-mật-của-sở-tttt"


def numbers(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(messages.c.recipient).order_by(messages.c.id)))


def test_old_numbers_become_keyed_hmacs_and_the_chain_still_verifies(engine):
    ids = sent(engine)
    for message_id in ids[:4]:
        apply_receipt(engine, "sandbox", f"P{message_id}", Status.DELIVERED, None)
    backdate(engine, timedelta(days=100), ids[:4])  # four of them ended 100 days ago
    seal_all(engine)
    head = verify(engine).head
    before = numbers(engine)

    assert apply(engine, KEY, timedelta(days=90)).numbers == 4
    after = numbers(engine)
    assert after[:4] == [pseudonym(KEY, number) for number in before[:4]]
    assert all(n.startswith("h:") and len(n) <= 20 for n in after[:4])
    assert after[4:] == before[4:]  # still sending or recent: kept
    assert apply(engine, KEY, timedelta(days=90)).numbers == 0  # done once
    verdict = verify(engine)
    assert verdict.ok and verdict.head == head  # events never held a number


def test_the_campaigns_holding_retained_numbers_are_found_by_their_own_index(engine):
    """A number's history, without the key, names the campaigns where retention replaced
    numbers; it asks the partial index of those messages, not every message (issue #23:
    that scan was most of a history's time in a ledger of a million messages)."""
    ids = sent(engine)
    assert f"recipient LIKE '{PREFIX}%'" == RETAINED  # the index's predicate, as written
    with engine.connect() as conn:
        assert list(conn.scalars(retained_campaigns())) == []
    apply_receipt(engine, "sandbox", f"P{ids[0]}", Status.DELIVERED, None)
    backdate(engine, timedelta(days=100), ids[:1])
    assert apply(engine, KEY, timedelta(days=90)).numbers == 1
    with engine.connect() as conn:
        assert list(conn.scalars(retained_campaigns())) == [SPEC.id]
        sql = str(retained_campaigns().compile(conn))
        conn.exec_driver_sql("ANALYZE")  # the plan of a ledger the planner knows
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table's plan
            plan = conn.exec_driver_sql(f"EXPLAIN {sql}", {}).scalars().all()
        else:
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("ix_messages_retained" in line for line in plan), plan


def test_the_same_number_gives_the_same_pseudonym_only_under_the_same_key():
    assert pseudonym(KEY, "+84912345678") == pseudonym(KEY, "+84912345678")
    assert pseudonym(KEY, "+84912345678") != pseudonym(KEY + "x", "+84912345678")
    assert pseudonym(KEY, "+84912345678") != pseudonym(KEY, "+84912345679")


def test_a_short_key_is_refused(engine):
    with pytest.raises(RetentionError, match="LOA_RETENTION_KEY"):
        apply(engine, "short", timedelta(days=1))


# A list with personal columns beside the phone: a name, a second number, a private
# note, and the district reports break down by.
COLUMNS = ["Họ và tên", "Số điện thoại người thân", "Huyện/Thành phố", "Ghi chú"]
DISTRICTS = ("Ninh Hải", "Bác Ái")
OLD = timedelta(days=100)


def personal_campaign(engine, count: int = 6) -> list[int]:
    """A campaign of ``count`` recipients with personal columns, sent and delivered
    (receipts through the inbox, as the webhook stores them), every message but the last
    ended 100 days ago. Returns the message ids."""
    rows = [
        ListRow(
            row=i + 2,
            phone=f"0912{i:06d}",
            values=(f"Trần Thị Số{i:02d}", f"0987{i:06d}", DISTRICTS[i % 2], f"bệnh nền {i:02d}"),
        )
        for i in range(count)
    ]
    record(engine, SPEC, rows, COLUMNS)
    claimed = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"P{m.id}") for m in claimed])
    store(
        engine,
        [  # a provider posting the number with its receipt, as Twilio's "To" does
            Inbound(
                "sandbox", f"P{m.id}", Status.DELIVERED, "DELIVRD", None, None,
                digest("sandbox", {"id": f"P{m.id}", "stat": "DELIVRD", "To": f"+84912{i:06d}"}),
            )
            for i, m in enumerate(claimed)
        ],
    )  # fmt: skip
    drain_all(engine)
    ids = sorted(m.id for m in claimed)
    backdate(engine, OLD, ids[:-1])
    with engine.begin() as conn:
        conn.execute(sa.update(receipts).values(received_at=now() - OLD))
    return ids


def texts(engine) -> str:
    """Every text and JSON value of every table of the ledger, one per line."""
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [
                c for c in table.columns if isinstance(c.type, sa.String | sa.Text | sa.JSON)
            ]
            for row in conn.execute(sa.select(*columns)):
                for value in row:
                    if value is not None:
                        found.append(
                            value
                            if isinstance(value, str)
                            else json.dumps(value, ensure_ascii=False)
                        )
    return "\n".join(found)


def test_no_number_and_no_name_is_left_anywhere_and_reports_still_build(engine):
    ids = personal_campaign(engine)
    with engine.begin() as conn:  # a visitor and a carrier's event id holding a number
        take_events(conn, ["VT-84912777001-2026"])
        conn.execute(sa.update(arrival_events).values(received_at=now() - OLD))
        welcome_once(conn, ["+84912777001"], timedelta(days=30), at=now() - OLD)
        welcome_once(conn, ["+84912777002"], timedelta(days=30))  # welcomed today: kept
    seal_all(engine)
    head = verify(engine).head
    before = build(engine, SPEC.id)
    assert before.by == "Huyện/Thành phố"
    ledger = texts(engine)
    assert "912000001" in ledger and "Trần Thị Số01" in ledger and "987000001" in ledger

    done = apply(engine, KEY, timedelta(days=90))
    assert done.as_dict() == {
        "numbers": 5, "fields": 5, "receipts": 6, "arrival_events": 1, "visitors": 1,
        "inbound": 0,
    }  # fmt: skip

    ledger = texts(engine)
    for i in range(5):  # ended 100 days ago: no number, second number, name or note left
        for secret in (f"912{i:06d}", f"987{i:06d}", f"Trần Thị Số{i:02d}", f"bệnh nền {i:02d}"):
            assert secret not in ledger, secret
    assert "912777001" not in ledger  # the old visitor and event id
    for secret in ("912000005", "987000005", "Trần Thị Số05", "bệnh nền 05", "+84912777002"):
        assert secret in ledger  # ended lately, or welcomed today: kept
    with engine.connect() as conn:
        cells = dict(conn.execute(sa.select(messages.c.id, messages.c.fields)).all())
        digests = list(conn.scalars(sa.select(receipts.c.digest)))
    assert cells[ids[0]] == [None, None, "Ninh Hải", None]  # the district stays
    assert cells[ids[-1]] == ["Trần Thị Số05", "0987000005", "Bác Ái", "bệnh nền 05"]
    assert all(d.startswith("h:") and len(d) <= 64 for d in digests)

    after = build(engine, SPEC.id)  # reports still build, with the same breakdowns
    assert after.statuses == before.statuses == {"delivered": 6}
    assert after.by_column == before.by_column
    assert after.by_column == {"Ninh Hải": {"delivered": 3}, "Bác Ái": {"delivered": 3}}
    by_name = build(engine, SPEC.id, by="Họ và tên")  # a personal column: blank once gone
    assert by_name.by_column == {"": {"delivered": 5}, "Trần Thị Số05": {"delivered": 1}}
    verdict = verify(engine)
    assert verdict.ok and verdict.head == head  # events never held a number or a name

    again = apply(engine, KEY, timedelta(days=90))
    assert again.as_dict() == dict.fromkeys(again.as_dict(), 0)  # done once


def test_fields_are_cleared_where_an_older_version_replaced_only_the_number(engine):
    ids = personal_campaign(engine, count=2)
    with engine.begin() as conn:  # what `loa retention apply` did before it knew fields
        conn.execute(
            sa.update(messages)
            .where(messages.c.id == ids[0])
            .values(recipient=pseudonym(KEY, "+84912000000"))
        )
    done = apply(engine, KEY, timedelta(days=90))
    assert (done.numbers, done.fields) == (0, 1)
    with engine.connect() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.id == ids[0])).one()
    assert row.recipient == pseudonym(KEY, "+84912000000")
    assert row.fields == [None, None, "Ninh Hải", None]


def test_a_list_without_a_kept_column_keeps_no_cell(engine):
    rows = [ListRow(row=2, phone="0912000001", values=("Lê Văn Một",))]
    record(engine, SPEC, rows, ["Họ tên"])
    (message,) = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(message.id, "P1")])
    apply_receipt(engine, "sandbox", "P1", Status.DELIVERED, None)
    backdate(engine, OLD)
    assert apply(engine, KEY, timedelta(days=90)).fields == 1
    with engine.connect() as conn:
        assert conn.scalar(sa.select(messages.c.fields)) is None
        assert conn.scalar(sa.select(sa.func.count()).where(messages.c.fields.is_(None))) == 1
    assert build(engine, SPEC.id).statuses == {"delivered": 1}


def test_the_columns_kept_are_places_and_languages():
    columns = ["Họ và tên", "Quận/Huyện", "Phường/Xã", "Ngôn ngữ", "Vùng", "SĐT 2"]
    assert kept_columns(columns, {}) == {1, 2, 3}
    assert kept_columns(columns, {"district": "Vùng"}) == {1, 2, 3, 4}
    assert kept_columns(columns, {}, area_column="Vùng") == {1, 2, 3, 4}  # a goal's areas
    assert kept_cells(["An", "Ninh Hải", None], frozenset({1})) == [None, "Ninh Hải", None]
    assert kept_cells(["An", "0987000001"], frozenset()) is None


def test_visitors_and_event_ids_go_after_the_shorter_of_the_window_and_the_period(engine):
    def visitors_left() -> list[str]:
        with engine.connect() as conn:
            return sorted(conn.scalars(sa.select(visitors.c.recipient)))

    with engine.begin() as conn:
        for number, days in (("+84912000040", 40), ("+84912000020", 20), ("+84912000100", 100)):
            welcome_once(conn, [number], timedelta(days=1), at=now() - timedelta(days=days))
    # No rules known: the retention period.
    assert apply(engine, KEY, timedelta(days=90)).visitors == 1
    assert visitors_left() == ["+84912000020", "+84912000040"]
    # Rules welcoming once per 30 days: 30 days.
    assert apply(engine, KEY, timedelta(days=90), arrivals_window=timedelta(days=30)).visitors == 1
    assert visitors_left() == ["+84912000020"]
    # A window longer than the period never keeps a number past it.
    assert apply(engine, KEY, timedelta(days=10), arrivals_window=timedelta(days=365)).visitors == 1
    assert visitors_left() == []


def test_a_number_typed_into_a_kept_column_is_dropped_too():
    from ledger.retention import kept_cells

    keep = frozenset({1, 2})
    cells = ["Nguyễn Văn A", "0987654321", "Phường 10", "+84 98 765 4322"]
    assert kept_cells(cells, keep) == [None, None, "Phường 10", None]
    assert kept_cells(["An", "+84987654322", "vi"], keep) == [None, None, "vi"]


def test_only_settled_receipts_are_keyed_and_pending_ones_still_apply_afterwards(engine):
    """Three receipts older than the period: one applied, one never drained yet (the
    drainer was down), one waiting for a send that was never recorded. Only the applied
    one is keyed: the others still have to work as receipts, so their plain digests must
    stay (a replay of them is recognised by it) and the pending one must still reach its
    message when the drainer comes back. Once settled, they are keyed in turn."""
    from ledger.receipts import APPLIED, PENDING, UNMATCHED, WAITING
    from ledger.summary import status_counts

    ids = sent(engine, count=2)

    def inbound(provider_id: str, stat: str = "DELIVRD") -> Inbound:
        fields = {"id": provider_id, "stat": stat, "To": "+84912300000"}
        return Inbound("sandbox", provider_id, Status.DELIVERED, stat, None, None,
                       digest("sandbox", fields))  # fmt: skip

    def state() -> dict[str, tuple[str, str]]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(receipts.c.provider_message_id, receipts.c.state, receipts.c.digest)
            ).all()
        return {provider_id: (st, dg) for provider_id, st, dg in rows}

    settled, pending, waiting = inbound(f"P{ids[0]}"), inbound(f"P{ids[1]}"), inbound("P-none")
    store(engine, [settled, waiting])
    drain_all(engine)  # applied, and waiting: its send is not recorded
    store(engine, [pending])  # arrived; the drainer has not run since
    with engine.begin() as conn:
        conn.execute(sa.update(receipts).values(received_at=now() - OLD))
    assert {k: v[0] for k, v in state().items()} == {
        settled.provider_message_id: APPLIED,
        pending.provider_message_id: PENDING,
        waiting.provider_message_id: WAITING,
    }

    assert apply(engine, KEY, timedelta(days=90)).receipts == 1
    after = state()
    assert after[settled.provider_message_id][1].startswith("h:")
    assert after[pending.provider_message_id] == (PENDING, pending.digest)
    assert after[waiting.provider_message_id] == (WAITING, waiting.digest)

    store(engine, [pending, waiting])  # replays, recognised by their digests
    assert len(state()) == 3
    drain_all(engine)  # the drainer is back: the pending receipt reaches its message
    assert status_counts(engine, SPEC.id)[Status.DELIVERED] == 2
    assert {k: v[0] for k, v in state().items()} == {
        settled.provider_message_id: APPLIED,
        pending.provider_message_id: APPLIED,
        waiting.provider_message_id: UNMATCHED,  # waited past its day
    }
    assert apply(engine, KEY, timedelta(days=90)).receipts == 2  # settled now: keyed
    assert all(dg.startswith("h:") for _, dg in state().values())


def test_a_pseudonym_is_the_base32_of_its_hmac_as_the_standard_library_spells_it():
    import base64
    import hashlib
    import hmac

    from ledger.retention import PREFIX, pseudonym, pseudonymiser

    bound = pseudonymiser("khoa-mot-hai-ba")
    for number in ("+84912345678", "+14155550100", "+8490000000", "+84999999999"):
        digest = hmac.new(b"khoa-mot-hai-ba", number.encode(), hashlib.sha256).digest()
        spelt = PREFIX + base64.b32encode(digest[:10]).decode("ascii")
        assert pseudonym("khoa-mot-hai-ba", number) == bound(number) == spelt
