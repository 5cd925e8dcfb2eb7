"""Retention: phone numbers and personal fields kept no longer than needed.

After the retention period (``LOA_RETENTION_DAYS``), ``apply`` goes through every place
the ledger keeps a number or a personal field:

- ``messages.recipient``: the number of every finished message (ended longer ago than
  the period) becomes a keyed HMAC of it: ``h:`` and 16 base32 characters (80 bits of
  HMAC-SHA256; the column holds 20). The same number under the same key gives the same
  value, so per-campaign uniqueness and counts hold, and whoever holds the key can still
  answer "was this number texted?" (``pseudonym``); nobody without it can recover one.
- ``messages.fields`` (the list's other cells, kept for templates and reports), of the
  same messages: every cell is dropped except those of the columns that name a place or
  a language (``KEPT_FIELDS``: district, ward, language, found as templates and reports
  find them, by the campaign's ``[columns]`` or a known header such as ``Huyện``). Names,
  second numbers, addresses, dates of birth and any other column are gone; reports still
  break down by district (the default), and ``--by`` another column counts the old
  messages as blank. A finished message is never sent again, so nothing renders from
  them after this. Why a fixed list rather than a column the campaign file declares:
  the rule then needs nothing from whoever wrote the file and cannot be set wrong.
- ``receipts.digest``: a SHA-256 over every field the provider posted, which for some
  providers includes the recipient's number (a ``To`` field). The other fields are
  guessable, so a plain hash of a Vietnamese number falls to a search of a billion
  candidates; receipts settled (not pending, not waiting) and received longer ago than
  the period get a keyed HMAC of it instead (``h:`` and 52 base32 characters). A replay
  that old is not recognised as one; applied, it moves nothing (statuses move forward).
- ``visitors`` (a visitor's number and last welcome) and ``arrival_events`` (the
  carrier's event ids, which may embed a number): deleted once older than the arrivals
  window (the rules' ``once_per_days``, when the rules are known) or the retention
  period, whichever is shorter. A visitor welcomed longer ago than that is welcome
  again, which the window says anyway.
- ``inbound_messages`` (messages handsets sent us: the sender's number and a text that
  may name anyone): deleted once received longer ago than the period. Nothing else
  refers to them, and an SMSC does not send a message again after that long, so the
  replay check their digest served has nothing left to recognise.

Kept as they are, on purpose:

- ``events`` (the audit chain) never hold a number or a list cell (``ledger.chain``), so
  ``loa audit verify`` passes before and after, with the same head.
- ``rejects`` hold a list row number and a reason, no cell of the row.
- ``message_parts`` hold a part's provider id, receipt status and code, no number.
- ``campaigns`` hold the campaign file, the list's file name, its headers and counts.
- ``suppressions`` keep their numbers: an opt-out must be honoured for good, and the
  Do-Not-Call and residents lists are the operator's, replaced by importing them again.

Outside the ledger, ``worker.upkeep.retention`` removes the arrivals inbox's processed files.

The database's own files: on SQLite, ``apply`` runs with ``secure_delete`` (the content
it frees is overwritten with zeros) and empties the write-ahead log afterwards; a few
stray copies can survive in pages SQLite reorganised, which only ``VACUUM`` (a rewrite of
the file) removes. On PostgreSQL, old row versions stay in the tables' files until
``VACUUM`` reuses their space (autovacuum does, in time); ``VACUUM FULL`` rewrites them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.plan import FIELD_ALIASES
from campaigns.recipients import fold
from campaigns.status import FINAL
from ledger.arrivals import prune
from ledger.audit.actions import record_action
from ledger.receipts import PENDING, WAITING
from ledger.schema import campaigns, inbound_messages, list_cell, messages, now, receipts

PREFIX = "h:"
#: Template fields whose list columns survive retention: places and languages, which
#: reports break down by and which name nobody.
KEPT_FIELDS = ("district", "ward", "language")
#: The shortest key accepted.
MIN_KEY_LENGTH = 16


class RetentionError(ValueError):
    """Retention cannot run as configured (no key, a key too short)."""


@dataclass
class Applied:
    """What one ``apply`` did: messages whose number became a pseudonym, messages whose
    personal cells were dropped, receipt digests keyed, event ids, visitors and handset
    messages deleted."""

    numbers: int = 0
    fields: int = 0
    receipts: int = 0
    arrival_events: int = 0
    visitors: int = 0
    inbound: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_key(key: str) -> None:
    """Raises ``RetentionError`` for a key shorter than ``MIN_KEY_LENGTH``."""
    if len(key) < MIN_KEY_LENGTH:
        raise RetentionError(f"LOA_RETENTION_KEY: at least {MIN_KEY_LENGTH} characters")


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32_PAIRS = [_BASE32[i >> 5] + _BASE32[i & 31] for i in range(1024)]


def pseudonym(key: str, e164: str) -> str:
    """The value a number is replaced by under ``key``: ``PREFIX`` and the base32 of the
    first 10 bytes of its HMAC-SHA256 (16 characters, no padding). The base32 is spelt
    here rather than by ``base64.b32encode`` (pure Python, 8 µs of the 11 a number took):
    a million recipients matched, or a million numbers imported, pay it once each
    (``tests/ledger/test_retention.py`` holds the two to the same output)."""
    value = int.from_bytes(hmac.digest(key.encode(), e164.encode(), "sha256")[:10], "big")
    return PREFIX + "".join(_BASE32[(value >> shift) & 31] for shift in range(75, -1, -5))


def pseudonymiser(key: str) -> Callable[[str], str]:
    """``pseudonym`` under ``key`` as one function: a million numbers (an import, a
    launch serving a goal) call it a million times. The key's HMAC state is made once and
    copied for each number (the standard library's ``hmac`` object; 1.2 µs where the
    one-shot ``hmac.digest`` took 3), and the 80 bits are spelt ten at a time from a table
    of the 1,024 pairs of base32 letters (0.8 µs where one letter at a time took 2.3)."""
    keyed = hmac.new(key.encode(), digestmod="sha256")
    pairs = _BASE32_PAIRS

    def pseudonym_of(e164: str) -> str:
        mac = keyed.copy()
        mac.update(e164.encode())
        v = int.from_bytes(mac.digest()[:10], "big")
        return (PREFIX + pairs[v >> 70] + pairs[(v >> 60) & 1023] + pairs[(v >> 50) & 1023]
                + pairs[(v >> 40) & 1023] + pairs[(v >> 30) & 1023] + pairs[(v >> 20) & 1023]
                + pairs[(v >> 10) & 1023] + pairs[v & 1023])  # fmt: skip

    return pseudonym_of


def fingerprint(key: str) -> str:
    """A short, public name for ``key`` (the pseudonym of a fixed text under it, 12
    characters): what is kept beside HMACs made under the key, to tell a later key apart
    without keeping the key."""
    return pseudonym(key, "loa:key-fingerprint")[len(PREFIX) : len(PREFIX) + 12]


def keyed_digest(key: str, digest: str) -> str:
    """The value a receipt's digest is replaced by under ``key`` (54 characters)."""
    mac = hmac.new(key.encode(), b"receipt:" + digest.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(mac).decode("ascii").rstrip("=")


def kept_columns(
    list_columns: list[str], mapping: dict[str, str], area_column: str | None = None
) -> frozenset[int]:
    """Indexes of the list columns that survive retention: those the campaign's
    ``[columns]`` maps a ``KEPT_FIELDS`` field to, or whose header is one's known name,
    and the column its goal reads its areas from (``area_column``: a goal's report
    breaks down by it for as long as the goal runs)."""
    names = set()
    if area_column:
        names.add(fold(area_column))
        if area_column in mapping:
            names.add(fold(mapping[area_column]))
    for field_name in KEPT_FIELDS:
        names.add(fold(field_name))
        names.update(FIELD_ALIASES.get(field_name, ()))
        if field_name in mapping:
            names.add(fold(mapping[field_name]))
    return frozenset(i for i, header in enumerate(list_columns) if fold(header) in names)


def kept_cells(cells: Any, keep: frozenset[int]) -> list[Any] | None:
    """A message's stored cells with all but ``keep`` dropped (``None`` when nothing is
    left). A kept cell that holds seven digits or more is dropped too: a district, a ward
    or a language never does, and a number typed into such a column is still a number."""
    if not isinstance(cells, list):
        return None
    left = [
        cell if i in keep and not _holds_a_number(cell) else None for i, cell in enumerate(cells)
    ]
    return left if any(cell is not None for cell in left) else None


def _holds_a_number(cell: Any) -> bool:
    return sum(ch.isdigit() for ch in str(cell)) >= 7


def apply(
    engine: Engine,
    key: str,
    older_than: timedelta,
    arrivals_window: timedelta | None = None,
    chunk: int = 5000,
) -> Applied:
    """Pseudonymise and drop what is past ``older_than`` (see the module's notes); the
    arrivals' visitors and event ids go after ``arrivals_window`` when it is shorter.
    Safe to run again (what was done is skipped) and to interrupt (each chunk commits).

    Raises:
        RetentionError: the key is shorter than 16 characters.
    """
    check_key(key)
    cutoff = now() - older_than
    applied = Applied()
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(campaigns.c.key, campaigns.c.list_columns, campaigns.c.spec).order_by(
                campaigns.c.key
            )
        ).all()
    for campaign_key, list_columns, spec in found:
        mapping = (spec or {}).get("columns") or {}
        area_column = ((spec or {}).get("goal") or {}).get("area_column")
        keep = kept_columns(list(list_columns or []), mapping, area_column)
        _messages(engine, key, cutoff, campaign_key, len(list_columns or []), keep, chunk, applied)
    _receipts(engine, key, cutoff, chunk, applied)
    window = min(older_than, arrivals_window) if arrivals_window else older_than
    with _erasing(engine) as conn:
        applied.arrival_events, applied.visitors = prune(conn, window)
        gone = conn.execute(
            inbound_messages.delete().where(inbound_messages.c.received_at < cutoff)
        )
        applied.inbound = gone.rowcount
        days = older_than.total_seconds() / 86400
        record_action(conn, "retention", older_than_days=days, **applied.as_dict())
    if engine.url.get_backend_name() == "sqlite":
        with engine.connect() as conn:  # the log of the old pages, emptied
            _driver(conn).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return applied


_CELLS = sa.JSON(none_as_null=True)  # None is SQL NULL, not the JSON text 'null'


def _messages(
    engine: Engine,
    key: str,
    cutoff: Any,
    campaign_key: int,
    width: int,
    keep: frozenset[int],
    chunk: int,
    applied: Applied,
) -> None:
    """One campaign's finished messages past ``cutoff``: numbers and personal cells."""
    while True:
        with _erasing(engine) as conn:
            personal = [list_cell(conn, i).is_not(None) for i in range(width) if i not in keep]
            due = sa.and_(
                messages.c.campaign_key == campaign_key,
                messages.c.final_at < cutoff,
                messages.c.status.in_([s.value for s in FINAL]),
                # Numbers not replaced yet, or cells left by a version that kept them.
                sa.or_(~messages.c.recipient.startswith(PREFIX), *personal),
            )
            rows = conn.execute(
                sa.select(messages.c.id, messages.c.recipient, messages.c.fields)
                .where(due)
                .limit(chunk)
            ).all()
            if not rows:
                return
            changes = []
            for mid, number, cells in rows:
                hashed = number.startswith(PREFIX)
                left = kept_cells(cells, keep)
                applied.numbers += not hashed
                applied.fields += left != cells
                changes.append(
                    {
                        "mid": mid,
                        "hashed": number if hashed else pseudonym(key, number),
                        "cells": left,
                    }
                )
            conn.execute(
                messages.update()
                .where(messages.c.id == sa.bindparam("mid"))
                .values(
                    recipient=sa.bindparam("hashed"),
                    fields=sa.bindparam("cells", type_=_CELLS),
                ),
                changes,
            )


def _receipts(engine: Engine, key: str, cutoff: Any, chunk: int, applied: Applied) -> None:
    due = sa.and_(
        receipts.c.received_at < cutoff,
        receipts.c.state.not_in([PENDING, WAITING]),
        ~receipts.c.digest.startswith(PREFIX),
    )
    while True:
        with _erasing(engine) as conn:
            rows = conn.execute(
                sa.select(receipts.c.id, receipts.c.digest).where(due).limit(chunk)
            ).all()
            if not rows:
                return
            conn.execute(
                receipts.update()
                .where(receipts.c.id == sa.bindparam("rid"))
                .values(digest=sa.bindparam("keyed")),
                [{"rid": rid, "keyed": keyed_digest(key, digest)} for rid, digest in rows],
            )
            applied.receipts += len(rows)


@contextmanager
def _erasing(engine: Engine) -> Iterator[Connection]:
    """A transaction, in which SQLite overwrites what it frees with zeros."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # on the driver's connection: outside any transaction
            _driver(conn).execute("PRAGMA secure_delete = ON")
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:  # the pooled connection goes back as it came
                _driver(conn).execute("PRAGMA secure_delete = OFF")


def _driver(conn: Connection) -> Any:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    return dbapi
