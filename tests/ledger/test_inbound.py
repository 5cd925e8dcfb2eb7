"""Messages handsets sent us (``ledger.inbound``), on both ledgers: stored as they came,
once however often the SMSC sends them again, made storable rather than refused, and
deleted after the retention period (``ledger.retention``)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ledger import inbound as inbound_module
from ledger import receipts
from ledger.inbound import InboundMessage, digest, store
from ledger.retention import apply
from ledger.schema import inbound_messages, now
from tests.ledger.receipt_scenes import T0, Clock

KEY = "khoá-bí-mật-của-sở-tttt"
FIELDS = {"source_addr": "84912000001", "destination_addr": "8088", "sequence": "7"}


def mo(text: str = "DK VAY 5000000", **fields: str) -> InboundMessage:
    """A handset message as the SMPP inbox builds it, its digest over the PDU's fields."""
    said = {**FIELDS, **fields, "short_message": text}
    return InboundMessage(
        "smsc", said["source_addr"], said["destination_addr"], text, digest("smsc", said)
    )


def stored(engine) -> list[tuple]:
    query = sa.select(
        inbound_messages.c.provider,
        inbound_messages.c.source,
        inbound_messages.c.destination,
        inbound_messages.c.text,
        inbound_messages.c.received_at,
    ).order_by(inbound_messages.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_a_digest_is_made_as_a_receipts_is_and_tells_messages_apart():
    assert digest("smsc", FIELDS) == receipts.digest("smsc", FIELDS)
    assert digest("smsc", FIELDS) == digest("smsc", dict(reversed(FIELDS.items())))
    assert digest("smsc", FIELDS) != digest("other", FIELDS)
    assert digest("smsc", FIELDS) != digest("smsc", {**FIELDS, "sequence": "8"})
    assert len(digest("smsc", FIELDS)) == 64


def test_a_handset_message_is_stored_as_it_came(engine, monkeypatch):
    monkeypatch.setattr(inbound_module, "now", Clock(T0))
    text = "Đăng ký vay\nsố tiền: 5 triệu"  # accents and a line break, kept
    assert store(engine, [mo(text)]) == 1
    assert stored(engine) == [("smsc", "84912000001", "8088", text, T0)]


def test_a_message_sent_again_is_stored_once_in_one_group_and_later(engine):
    first, other = mo(), mo(sequence="8")
    assert store(engine, [first, first, other]) == 2  # a replay in the same group
    assert store(engine, [mo(), mo(sequence="9")]) == 2  # offered: one is a replay
    assert [row[3] for row in stored(engine)] == ["DK VAY 5000000"] * 3


def test_what_no_column_can_hold_is_replaced_not_refused(engine):
    """NUL (PostgreSQL's text refuses it) and a lone surrogate (no UTF-8 encoder takes
    it) in the text, a control character and an overlong address: one such message must
    not fail its whole group, so each is made storable."""
    odd = InboundMessage("smsc", "849\x1b12" + "0" * 40, "8088", "a\x00b\ud800c\nd", "d" * 64)
    assert store(engine, [odd, mo()]) == 2
    source, text = stored(engine)[0][1], stored(engine)[0][3]
    assert source == "849\ufffd12" + "0" * 26  # cut to its 32 characters
    assert text == "a\ufffdb\ufffdc\nd"  # the line break is the sender's: kept


def test_retention_deletes_handset_messages_past_the_period(engine):
    old, new = mo("cũ", sequence="old"), mo("mới", sequence="new")
    store(engine, [old, new])
    with engine.begin() as conn:
        conn.execute(
            inbound_messages.update()
            .where(inbound_messages.c.digest == old.digest)
            .values(received_at=now() - timedelta(days=91))
        )
    assert apply(engine, KEY, timedelta(days=90)).inbound == 1
    assert [row[3] for row in stored(engine)] == ["mới"]
    assert apply(engine, KEY, timedelta(days=90)).inbound == 0  # done once
