"""The tamper-evident log: every event sealed into one hash chain, in the order sealed.

Workers write events freely (no lock on the hot path); a **sealer** then chains them, one
pass at a time under a lock (a PostgreSQL advisory lock; SQLite has one writer anyway), so
two sealers can never fork the chain. Each seal row holds an event's id and its link::

    link(1) = SHA-256( "0" * 64 + "\\n" + canonical(event sealed first) )
    link(n) = SHA-256( link(n-1) as 64 lower-case hex digits + "\\n" + canonical(event) )

``canonical(event)`` is the UTF-8 encoding of a JSON object with exactly the keys ``id``,
``campaign_id``, ``message_id``, ``at``, ``source``, ``from_status``, ``to_status``,
``code`` and ``detail``, sorted, with no whitespace (separators ``,`` and ``:``) and
non-ASCII characters written as themselves; ``at`` is UTC as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; absent values are ``null``; ``detail`` is an object
whose keys are sorted the same way (numbers as JSON numbers, as stored). This encoding is
the contract with auditors: it does not change between versions of Loa. Events never hold
a phone number or a message text, so retention (which replaces numbers by keyed HMACs)
never touches what the chain covers.

Events are sealed in the order the sealer finds them committed, which is id order except
for a transaction that committed late; the chain's order is the seals' order (``seq``).
``verify`` walks the seals and names the first link that does not hold: an event edited,
deleted, or two events swapped; a seal edited or removed from the middle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger.schema import events, now, seals, verifications

GENESIS = "0" * 64
#: The root of the empty Merkle tree (``ledger.audit.merkle.EMPTY_ROOT``), in hex.
EMPTY_ROOT_HEX = hashlib.sha256(b"").hexdigest()
#: The name of this encoding, for exports: it never changes meaning.
ENCODING = "loa-chain-v1"
#: Arbitrary, fixed: the PostgreSQL advisory lock that serialises sealers.
SEAL_LOCK = 0x4C4F4153  # "LOAS"
#: Events are written in short transactions; one still unsealed whose id is less than this
#: far below the highest id sealed is looked for again (it may have committed after later
#: ones were sealed).
STRAGGLER_WINDOW = 50_000
PASS_LIMIT = 20_000

_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def stamp(at: datetime) -> str:
    """A time as the chain writes it: UTC, microseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_fields(row: Any) -> dict[str, Any]:
    """The event as the chain covers it: exactly these keys, the time as a string."""
    return {
        "id": row.id,
        "campaign_id": row.campaign_id,
        "message_id": row.message_id,
        "at": stamp(row.at),
        "source": row.source,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "code": row.code,
        "detail": row.detail,
    }


def canonical(row: Any) -> bytes:
    """The canonical encoding of one event row (see the module's documentation)."""
    text = _dumps(event_fields(row))
    return text.encode("utf-8")  # pragma: no mutate ("UTF-8" names the same codec)


def link(previous: str, row: Any) -> str:
    return link_of(previous, canonical(row))


def link_of(previous: str, encoded: bytes) -> str:
    """``link`` of an event already encoded (``canonical``)."""
    digits = previous.encode("ascii")  # pragma: no mutate ("ASCII" names the same codec)
    return hashlib.sha256(digits + b"\n" + encoded).hexdigest()


def lock_sealers(conn: Connection, wait: bool) -> bool:
    """Take the sealers' lock for this transaction; ``False`` when another sealer holds it
    and ``wait`` is false. (SQLite: the transaction's write lock is enough.)"""
    if conn.dialect.name != "postgresql":
        return True
    # Equivalent mutants: SQL keywords and function names read the same in any case.
    if wait:
        lock = sa.text("SELECT pg_advisory_xact_lock(:key)")  # pragma: no mutate
        conn.execute(lock, {"key": SEAL_LOCK})
        return True
    try_lock = sa.text("SELECT pg_try_advisory_xact_lock(:key)")  # pragma: no mutate
    return bool(conn.scalar(try_lock, {"key": SEAL_LOCK}))


def _head(conn: Connection) -> tuple[int, str, int]:
    """(seq, link) of the last seal and the highest event id sealed, or (0, GENESIS, 0).
    Not the last seal's event: a straggler sealed last has a lower id than the events
    sealed before it, and the window and the count of events waiting go by the highest."""
    last = sa.select(seals.c.seq, seals.c.hash).order_by(seals.c.seq.desc())
    row = conn.execute(last.limit(1)).first()  # pragma: no mutate (first(): any limit alike)
    if row is None:
        return (0, GENESIS, 0)
    return (row.seq, row.hash, conn.scalar(sa.select(sa.func.max(seals.c.event_id))))


def not_sealed() -> sa.ColumnElement[bool]:
    """The condition on ``events`` of one no seal holds yet, wherever its id is."""
    # EXISTS ignores what its query selects: a mutant selecting nothing is equivalent.
    is_sealed = seals.c.event_id == events.c.id
    return ~sa.select(seals.c.event_id).where(is_sealed).exists()  # pragma: no mutate


def _unsealed(conn: Connection, after: int | None, limit: int) -> list[Any]:
    """Events not sealed yet, by id: above ``after``, or anywhere (``None``)."""
    query = sa.select(events).where(not_sealed()).order_by(events.c.id)
    if after is not None:
        query = query.where(events.c.id > after)
    return list(conn.execute(query.limit(limit)).all())


_PG_SEALS = """
    INSERT INTO seals (seq, event_id, hash, sealed_at)
    SELECT %(first)s + n - 1, event_id, hash, %(at)s
    FROM unnest(%(ids)s::bigint[], %(hashes)s::varchar[]) WITH ORDINALITY AS u(event_id, hash, n)
"""


def seal(
    engine: Engine, limit: int = PASS_LIMIT, wait: bool = True, everywhere: bool = False
) -> int:
    """Chain the events not sealed yet (at most ``limit``). Returns how many were sealed
    (0 also when ``wait`` is false and another sealer is at work).

    A pass looks above the highest id sealed, less ``STRAGGLER_WINDOW`` (cheap, every few
    seconds); ``everywhere`` looks at every event. The housekeeper does that once a
    minute and ``seal_all`` always: an event written with an id far above the others (one
    inserted by hand at 10^12) once moved the window past every later event, and they
    were never sealed, nor counted as waiting."""
    with engine.begin() as conn:
        if not lock_sealers(conn, wait):
            return 0
        return seal_in(conn, limit, everywhere)


def seal_in(conn: Connection, limit: int = PASS_LIMIT, everywhere: bool = False) -> int:
    """One sealing pass (``seal``) in the caller's transaction, which holds the sealers'
    lock (``lock_sealers``): what it seals commits with the caller's work (an export
    seals its own event in the transaction that holds the recipients still). Returns
    how many were sealed."""
    seq, previous, last_event = _head(conn)
    after = None if everywhere else max(0, last_event - STRAGGLER_WINDOW)
    rows = _unsealed(conn, after, limit)
    if not rows:
        return 0
    at, first, hashes = now(), seq + 1, []
    for row in rows:
        previous = link(previous, row)
        hashes.append(previous)
    ids = [row.id for row in rows]
    # Equivalent mutant: both branches write the same seals, PostgreSQL's in one statement.
    if conn.dialect.name == "postgresql":  # pragma: no mutate
        # One statement: a pass seals up to 20,000 events, and the housekeeper shares
        # the machine with the sending loop (row by row: half of the pass's CPU).
        params = {"first": first, "ids": ids, "hashes": hashes, "at": at}
        conn.exec_driver_sql(_PG_SEALS, params)
    else:
        values = [
            {
                # Equivalent mutant: without "seq", SQLite's rowid gives the same number.
                "seq": first + i,  # pragma: no mutate
                "event_id": event_id,
                "hash": hashes[i],
                "sealed_at": at,
            }
            for i, event_id in enumerate(ids)
        ]
        conn.execute(seals.insert(), values)
    return len(ids)


@dataclass
class Verdict:
    """What a verification found (``ledger.audit.verify.verify_log``): the links checked,
    the chain's head and the Merkle root of the events that held, the first broken link
    (``None`` when the chain holds), every other thing found altered (``problems``: a
    checkpoint the tree no longer has, a message whose row disagrees with its events …),
    the checkpoints checked and the events not sealed yet."""

    sealed: int = 0
    head: str = GENESIS
    broken: dict[str, Any] | None = None
    unsealed: int = 0
    checked_at: str = field(default_factory=lambda: stamp(now()))
    root: str = EMPTY_ROOT_HEX
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0
    messages: int = 0

    @property
    def ok(self) -> bool:
        return self.broken is None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sealed": self.sealed,
            "head": self.head,
            "root": self.root,
            "broken": self.broken,
            "problems": self.problems,
            "checkpoints": self.checkpoints,
            "messages": self.messages,
            "unsealed": self.unsealed,
            "checked_at": self.checked_at,
        }


def verify(engine: Engine, page: int = 10_000) -> Verdict:  # pragma: no mutate (page size)
    """Recompute the chain and the tree from the events as they are now, and check every
    checkpoint, earlier verdict and message row against them
    (``ledger.audit.verify.verify_log``, without a key to check signatures by)."""
    from ledger.audit.verify import verify_log

    return verify_log(engine, page=page)


def seal_all(engine: Engine) -> int:
    """Seal passes, looking at every event, until nothing is left. Returns how many were
    sealed."""
    total = 0
    while sealed := seal(engine, everywhere=True):
        total += sealed
    return total


def lag(engine: Engine) -> timedelta | None:
    """How old the oldest unsealed event is (``None``: everything is sealed)."""
    oldest = sa.select(sa.func.min(events.c.at)).where(not_sealed())
    with engine.connect() as conn:
        at = conn.scalar(oldest)
    return (now() - at) if at is not None else None


def record_verdict(engine: Engine, verdict: Verdict) -> None:
    """Keep a whole-chain verification's outcome (``verifications``), for reports."""
    with engine.begin() as conn:
        conn.execute(
            verifications.insert().values(
                at=now(), ok=verdict.ok, sealed=verdict.sealed, head=verdict.head,
                root=verdict.root, broken=_broken(verdict),
            )
        )  # fmt: skip


def _broken(verdict: Verdict) -> dict[str, Any] | None:
    """What a verdict found broken, as kept: the chain's first broken link, and the other
    problems (at most 50 named)."""
    if verdict.ok:
        return None
    found = dict(verdict.broken or {})
    if verdict.problems:
        found["problems"] = verdict.problems[:50]
    return found


def audit_status(engine: Engine) -> dict[str, Any]:
    """The chain as a report shows it, without recomputing it: its head now, the events
    not sealed yet, and the last whole-chain verification (``None``: never verified), with
    how many links were sealed after it."""
    with engine.connect() as conn:
        seq, head, last_event = _head(conn)
        unsealed = conn.scalar(
            sa.select(sa.func.count()).select_from(events).where(events.c.id > last_event)
        )
        newest = sa.select(verifications).order_by(verifications.c.id.desc())
        last = conn.execute(newest.limit(1)).first()  # pragma: no mutate (first(): any limit)
    verified = None
    if last is not None:
        verified = {
            "at": stamp(last.at),
            "ok": last.ok,
            "sealed": last.sealed,
            "head": last.head,
            "root": last.root,
            "broken": last.broken,
        }
    return {
        "head_seq": seq,
        "head": head,
        "unsealed": unsealed,
        "verified": verified,
        "sealed_since_verified": seq - verified["sealed"] if verified else seq,
    }


def verified_within(engine: Engine, period: timedelta) -> bool:
    """Whether a whole-chain verification was recorded in the last ``period``."""
    with engine.connect() as conn:
        newest = sa.select(verifications.c.at).order_by(verifications.c.id.desc())
        latest = conn.scalar(newest.limit(1))  # pragma: no mutate (scalar(): any limit alike)
    return latest is not None and now() - latest < period
