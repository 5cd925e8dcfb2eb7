"""Messages handsets sent us (mobile-originated: what a provider's bind delivers that is
not a delivery receipt), durable in the ledger before the provider acknowledges them.

As with receipts (``ledger.receipts``): a message is stored before the SMSC gets its
answer, so one lost in a crash comes again, because it was never acknowledged; and the
SMSC sends a message again when our answer was lost, so each is recognised by its
``digest`` (the provider and every field it says tells one message from another) and
stored once. A provider whose messages carry no id of their own adds a mark of
each delivery: the same words sent twice by a person are two messages. Callers group-commit
(``worker.inbox``): what arrives together is one transaction.

What a handset sent is stored as it came, made storable rather than refused: a group
commit that failed on one odd message would fail every message of the group, and an
SMSC refused a message can only send it again. ``source`` and ``destination`` have
every character that is not printable replaced by U+FFFD and are cut to their columns
(32 characters; a handset's address holds fewer); ``text`` keeps its line breaks and loses
only what no database column can hold (NUL, a lone surrogate half), each replaced by
U+FFFD.

``source`` is the handset's number: personal data, never logged, deleted after the
retention period (``ledger.retention``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from ledger import receipts
from ledger.schema import inbound_messages, now

#: The width of the provider, source and destination columns.
ADDRESS_LENGTH = 32
PROVIDER_LENGTH = 32
REPLACEMENT = "\ufffd"
#: What a text column cannot hold: PostgreSQL refuses NUL; no UTF-8 encoder (psycopg's,
#: sqlite3's) takes a lone surrogate half (a UCS-2 text decoded leniently has them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class InboundMessage:
    """One message a handset sent to one of our numbers, as a provider received it.

    Attributes:
        provider: the provider instance's name (as ``messages.provider``).
        source: the handset's number as the provider wrote it (personal data).
        destination: our number or short code it was sent to.
        text: what it says, decoded.
        digest: what makes a replay the same message (``digest``).
    """

    provider: str
    source: str
    destination: str
    text: str
    digest: str

    def row(self) -> dict[str, Any]:
        """The ``inbound_messages`` row, made storable (see the module's notes)."""
        return {
            "provider": _address(self.provider, PROVIDER_LENGTH),
            "source": _address(self.source, ADDRESS_LENGTH),
            "destination": _address(self.destination, ADDRESS_LENGTH),
            "text": _UNSTORABLE.sub(REPLACEMENT, self.text),
            "digest": self.digest,
        }


def _address(value: str, limit: int) -> str:
    if len(value) <= limit and value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else REPLACEMENT for ch in value[:limit])


def digest(provider: str, fields: Mapping[str, str]) -> str:
    """What makes two handset messages the same message: the provider and every field it
    sent (64 hex characters), computed as a receipt's (``ledger.receipts.digest``)."""
    return receipts.digest(provider, fields)


def store(engine: Engine, rows: Sequence[InboundMessage]) -> int:
    """Insert handset messages in one transaction; a replay (a digest already stored, or
    twice in ``rows``) is skipped by the database itself (``ON CONFLICT DO NOTHING``).
    Returns how many distinct messages were offered.

    Raises:
        Whatever the database raises (it is away …): then none is stored, and the provider
        answers each sender "try again".
    """
    if not rows:
        return 0
    at = now()
    values = {r.digest: {**r.row(), "received_at": at} for r in rows}  # replays in one group
    insert = (pg_insert if engine.dialect.name == "postgresql" else sqlite_insert)(inbound_messages)
    with engine.begin() as conn:
        conn.execute(
            insert.on_conflict_do_nothing(index_elements=["digest"]), list(values.values())
        )
    return len(values)
