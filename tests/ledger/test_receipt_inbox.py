"""What the webhook's inbox keeps (``ledger.receipts``): a receipt the ledger could not
hold is refused before it is stored, naming the field (the text of the 400 the provider
reads); one it can hold is stored as the provider said it, cut to its columns, flagged
when its status has no mapping, and stored once however often it is replayed."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger import receipts as inbox_module
from ledger.receipts import Inbound, digest, store
from ledger.schema import receipts
from tests.ledger.receipt_scenes import T0, Clock, receipt

#: The longest each field may be, from the columns they end in (ledger/schema.py:
#: receipts.provider_message_id 64, raw_status 64, network 20; messages.error_code 32).
LONGEST = {"provider_message_id": 64, "raw_status": 64, "code": 32, "network": 20}
FULL = Inbound(
    "gateway",
    "i" * LONGEST["provider_message_id"],
    Status.UNDELIVERED,
    "r" * LONGEST["raw_status"],
    "c" * LONGEST["code"],
    "n" * LONGEST["network"],
    "d" * 64,
)


def test_a_receipt_with_every_field_at_its_longest_is_taken():
    FULL.check()
    replace(FULL, code=None, network=None).check()  # a receipt without either is complete


@pytest.mark.parametrize("field", list(LONGEST))
def test_one_character_more_is_refused_naming_the_field(field):
    longer = replace(FULL, **{field: "x" * (LONGEST[field] + 1)})
    with pytest.raises(ValueError) as refused:
        longer.check()
    assert str(refused.value) == f"{field}: longer than {LONGEST[field]} characters"


@pytest.mark.parametrize("field", list(LONGEST))
def test_a_control_character_is_refused_naming_the_field(field):
    with pytest.raises(ValueError) as refused:
        replace(FULL, **{field: "loa-1\x00"}).check()
    assert str(refused.value) == f"{field}: holds a control character"


def test_a_field_after_an_absent_one_is_still_checked():
    """No code (it is optional) does not excuse the network after it."""
    with pytest.raises(ValueError, match=r"^network: "):
        replace(FULL, code=None, network="n" * 21).check()


def test_a_receipt_without_a_message_id_is_refused():
    with pytest.raises(ValueError) as refused:
        replace(FULL, provider_message_id="").check()
    assert str(refused.value) == "the receipt has no message id"


def test_a_digest_is_the_provider_and_every_field_whatever_their_order():
    fields = {"RequestId": "loa-1", "SendStatus": "5", "telcoid": "Hà Nội"}
    again = dict(reversed(fields.items()))
    assert digest("gateway", fields) == digest("gateway", again)
    assert digest("gateway", fields) != digest("backup", fields)
    assert digest("gateway", fields) != digest("gateway", {**fields, "SendStatus": "4"})
    # The stored form, written out by hand: JSON of [provider, sorted pairs], non-ASCII
    # kept as it is, UTF-8. Receipts stored by earlier versions are recognised by it: a
    # change would store every replay of them again.
    text = '["gateway", [["RequestId", "loa-1"], ["SendStatus", "5"], ["telcoid", "Hà Nội"]]]'
    assert digest("gateway", fields) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stored(engine) -> list[tuple]:
    query = sa.select(
        receipts.c.provider,
        receipts.c.provider_message_id,
        receipts.c.status,
        receipts.c.raw_status,
        receipts.c.code,
        receipts.c.network,
        receipts.c.digest,
        receipts.c.state,
        receipts.c.received_at,
        receipts.c.applied_at,
    ).order_by(receipts.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_a_receipt_is_stored_as_the_provider_said_it(engine, monkeypatch):
    monkeypatch.setattr(inbox_module, "now", Clock(T0))
    delivered = receipt("P1", Status.DELIVERED, raw="DELIVRD", code="000", network="viettel")
    unknown = receipt("P2", None, raw="teleported")
    new, set_aside = ("pending", T0, None), ("flagged", T0, None)  # state, arrived, settled
    store(engine, [delivered, unknown])
    assert _stored(engine) == [
        ("sandbox", "P1", "delivered", "DELIVRD", "000", "viettel", delivered.digest, *new),
        # No mapping for its status: kept raw and set aside, never applied.
        ("sandbox", "P2", None, "teleported", None, None, unknown.digest, *set_aside),
    ]


def test_store_cuts_each_field_to_its_receipt_column(engine):
    """A receipt that did not go through ``check`` (an older version's) still stores:
    raw status and code cut to 64 characters, network to 20."""
    long = Inbound("sandbox", "P1", Status.UNDELIVERED, "r" * 70, "c" * 70, "n" * 25, "d" * 64)
    store(engine, [long])
    (row,) = _stored(engine)
    assert row[3:6] == ("r" * 64, "c" * 64, "n" * 20)


def test_a_replay_is_stored_once_in_one_group_and_later(engine):
    first = receipt("P1", Status.DELIVERED)
    other = receipt("P2", Status.DELIVERED)
    assert store(engine, []) == 0
    assert store(engine, [first, first, other]) == 2  # a provider's retry in the same group
    store(engine, [first])  # and one arriving later
    assert [row[1] for row in _stored(engine)] == ["P1", "P2"]
