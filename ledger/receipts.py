"""The receipt inbox: every delivery receipt the webhook accepted, durable in the ledger
before the provider gets its 2xx, then applied to its message by a drainer.

Why the ledger and not a Redis queue: a receipt is evidence. Kept in the ledger, a 2xx
means the receipt is on the auditor's disk, and a ledger that is down answers 5xx, so the
provider retries instead of us losing it. Writing one receipt per transaction would cap
the webhook at what one commit costs; the webhook instead **group-commits**: requests that
arrive together are inserted in one statement, one commit, and each is answered once that
commit returned (``worker.web.webhook``).

Applying is separate and in bulk (``drain``): the receipt's message is found by provider
and provider id; a receipt that arrives before its send was recorded (it can overtake the
provider's own answer) stays ``waiting`` and is tried again on later passes, for a day,
before it is marked ``unmatched`` (kept, never guessed). A replayed receipt (the same
provider and the same fields) is recognised by its digest and stored once.

A receipt for a part of a message sent as several submissions (each part with its own
id) is looked up among the parts first, recorded on its part, and the message's state
worked out from all its parts (``ledger.parts``); such a receipt is ``applied`` once its
part took it, whether or not the message moved (it stays ``sent`` until every part, or a
failed one, has said).

What a provider wrote in a receipt (its id, raw status, code, network) arrives made
storable (``providers.base.storable``: control characters replaced by U+FFFD, cut to the
columns below), so a hostile or broken provider's receipt is kept, recognisable, not
lost. One the ledger could still not hold is refused before it is stored
(``Inbound.check``: the webhook answers 400), because one such row in a group commit
would fail the whole group and answer 503 to every receipt that happened to arrive with
it. A stored receipt
that still cannot be applied (stored by an older version, or a rule the database enforces
that this code does not know) is marked ``flagged`` alone, and the rest are applied: one
bad row never holds up the receipts behind it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from campaigns.status import FINAL, Status, can_move
from ledger import parts
from ledger.schema import campaigns, events, messages, now, receipts

log = structlog.get_logger("loa.receipts")

PENDING, WAITING, APPLIED, IGNORED, UNMATCHED, FLAGGED = (
    "pending", "waiting", "applied", "ignored", "unmatched", "flagged",
)  # fmt: skip
#: How long a receipt for an id not recorded yet is tried again.
MATCH_WINDOW = timedelta(days=1)
#: The longest value each field may have: the narrowest column it is written to
#: (``code`` goes to ``messages.error_code``, 32 characters); the lengths providers cut
#: to (``providers.base``), held equal by ``tests/providers/test_hostile_answers.py``.
LIMITS = {"provider_message_id": 64, "raw_status": 64, "code": 32, "network": 20}


@dataclass(frozen=True, slots=True)
class Inbound:
    """One parsed receipt, as the webhook stores it."""

    provider: str
    provider_message_id: str
    status: Status | None  # None: a raw status with no mapping (stored flagged)
    raw_status: str
    code: str | None
    network: str | None
    digest: str
    #: Loa's own id, when the provider echoes it: the message if its provider id was
    #: never recorded (a send whose answer was lost).
    message_id: int | None = None

    def check(self) -> None:
        """Refuse what the ledger cannot store or apply as it is.

        Raises:
            ValueError: naming the field: empty id, longer than ``LIMITS``, or holding a
                NUL or another control character (PostgreSQL's text refuses NUL outright).
        """
        if not self.provider_message_id:
            raise ValueError("the receipt has no message id")
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if value is None:  # code and network are optional
                continue
            if len(value) > limit:
                raise ValueError(f"{name}: longer than {limit} characters")
            if not value.isprintable():
                raise ValueError(f"{name}: holds a control character")

    def row(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "status": self.status.value if self.status else None,
            "raw_status": self.raw_status[:64],
            "code": self.code[:64] if self.code else None,
            "network": self.network[:20] if self.network else None,
            "digest": self.digest,
            "state": PENDING if self.status else FLAGGED,
            "message_id": self.message_id,
        }


def digest(provider: str, fields: Mapping[str, str]) -> str:
    """What makes two receipts the same receipt: the provider and every field it sent."""
    # pragma below: ensure_ascii=None is False's twin (json reads it as a truth value)
    text = json.dumps([provider, sorted(fields.items())], ensure_ascii=False)  # pragma: no mutate
    return hashlib.sha256(text.encode()).hexdigest()


def store(engine: Engine, inbound: Sequence[Inbound]) -> int:
    """Insert receipts in one transaction; a replay (a digest already stored) is skipped
    by the database itself (``ON CONFLICT DO NOTHING``: no lookup first). Returns how many
    were offered. Raises whatever the database raises: then none is stored, and the
    webhook answers 5xx to every one of them."""
    if not inbound:
        return 0
    at = now()
    rows = {r.digest: {**r.row(), "received_at": at} for r in inbound}  # replays in one group
    insert = (pg_insert if engine.dialect.name == "postgresql" else sqlite_insert)(receipts)
    # pragma below: no target (None) or "DIGEST" name the same index: the only other unique
    # key is the generated id, which never conflicts; both databases fold unquoted case.
    replay_safe = insert.on_conflict_do_nothing(index_elements=["digest"])  # pragma: no mutate
    with engine.begin() as conn:
        conn.execute(replay_safe, list(rows.values()))
    return len(rows)


def _due(conn: Any, state: str, limit: int, *order: sa.ColumnElement[Any]) -> list[Any]:
    query = sa.select(receipts).where(receipts.c.state == state).order_by(*order).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # drainers share the work
    return list(conn.execute(query))


def _batch(conn: Any, limit: int) -> list[Any]:
    """Up to ``limit`` new receipts, oldest first, then a quarter as many waiting ones (at
    least one), least recently tried first: a waiting receipt tried goes to the back of
    the line, so that however many can never match, every one is tried in turn."""
    share = limit // 4  # pragma: no mutate (limit / 4: SQL's LIMIT keeps the whole part)
    fresh = _due(conn, PENDING, limit, receipts.c.id)
    return fresh + _due(conn, WAITING, max(1, share), receipts.c.tried_at, receipts.c.id)


# pragma below: a default production never uses (drain_all always passes its limit)
def drain(engine: Engine, limit: int = 1000) -> dict[str, int]:  # pragma: no mutate
    """Apply up to ``limit`` new receipts to their messages, oldest first, and try again
    some of those still waiting for their message (so that many waiting never hold up
    new ones). Returns counts by outcome (``flagged``: receipts that could not be applied
    and were set aside).

    Raises:
        sqlalchemy.exc.OperationalError, InterfaceError: the ledger is away (nothing
            changed; the next pass tries again).
    """
    try:
        return _drain(engine, limit)
    except (sa.exc.OperationalError, sa.exc.InterfaceError):
        raise
    except Exception:  # a receipt the ledger refuses: find it, alone, and set it aside
        return _drain_singly(engine, limit)


def _drain_singly(engine: Engine, limit: int) -> dict[str, int]:
    """``drain`` one receipt per transaction; one that fails is marked ``flagged``."""
    counts = {APPLIED: 0, IGNORED: 0, WAITING: 0, UNMATCHED: 0, FLAGGED: 0}
    with engine.connect() as conn:
        ids = [r.id for r in _batch(conn, limit)]
    for receipt_id in ids:
        try:
            for state, count in _drain(engine, only=receipt_id).items():
                counts[state] += count
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            raise
        except Exception as exc:
            with engine.begin() as conn:
                conn.execute(
                    receipts.update()
                    .where(receipts.c.id == receipt_id)
                    .values(state=FLAGGED, applied_at=now())
                )
            log.warning("receipts.flagged", receipt=receipt_id, error=type(exc).__name__)
            counts[FLAGGED] += 1
    return counts


def _drain(
    engine: Engine,
    limit: int = 0,  # pragma: no mutate (read only when no receipt is named, and given then)
    only: int | None = None,
) -> dict[str, int]:
    counts = {APPLIED: 0, IGNORED: 0, WAITING: 0, UNMATCHED: 0, FLAGGED: 0}
    cutoff = now() - MATCH_WINDOW
    with engine.begin() as conn:
        if only is None:
            rows = _batch(conn, limit)
        else:
            rows = list(conn.execute(sa.select(receipts).where(receipts.c.id == only)))
            rows = [r for r in rows if r.state in (PENDING, WAITING)]
        if not rows:
            return counts
        wanted = list({(r.provider, r.provider_message_id) for r in rows})
        # Parts first: part 1's id is its message's too, and must not decide it alone.
        in_parts = parts.find(conn, wanted)
        whole = [pair for pair in wanted if pair not in in_parts]
        found = {
            (provider, provider_id): message_id
            for message_id, provider, provider_id in conn.execute(
                sa.select(messages.c.id, messages.c.provider, messages.c.provider_message_id).where(
                    sa.tuple_(messages.c.provider, messages.c.provider_message_id).in_(whole)
                )
            )
        }
        found.update(_by_our_id(conn, rows, found, in_parts))
        outcome: dict[str, list[int]] = {state: [] for state in counts}
        matched, on_parts = [], []
        # In the order received. pragma: without the key, rows sort by their first column, id
        for row in sorted(rows, key=lambda r: r.id):  # pragma: no mutate
            pair = (row.provider, row.provider_message_id)
            if pair in in_parts:
                on_parts.append((row, in_parts[pair]))
            elif pair in found:
                matched.append((row, found[pair]))
            else:
                outcome[WAITING if row.received_at > cutoff else UNMATCHED].append(row.id)
        # pragma: strict=True only asserts what _apply guarantees (one answer per receipt)
        for row, moved in zip(matched, _apply(conn, matched), strict=True):  # pragma: no mutate
            outcome[APPLIED if moved else IGNORED].append(row[0].id)
        # A part's receipt is applied once recorded on its part, whatever its message did.
        recorded, decided = parts.record(conn, on_parts)
        _apply(conn, decided)
        for (row, _), moved in zip(on_parts, recorded, strict=True):  # pragma: no mutate
            outcome[APPLIED if moved else IGNORED].append(row.id)
        at = now()
        for state, ids in outcome.items():
            if ids:
                done = {"tried_at": at} if state == WAITING else {"applied_at": at}
                conn.execute(
                    receipts.update().where(receipts.c.id.in_(ids)).values(state=state, **done)
                )
            counts[state] = len(ids)
    return counts


def _by_our_id(
    conn: Connection, rows: list[Any], found: dict[tuple[str, str], int], in_parts: Any
) -> dict[tuple[str, str], int]:
    """The receipts no provider id matched that carry Loa's own id of their message (a
    send whose answer, with the provider's id, was lost: the message is ``unknown``, or
    ``sending`` and handed over), matched to it, of their provider only; the provider's
    id is recorded on the message then, so that its later receipts match as any."""
    ours = {
        row.message_id: (row.provider, row.provider_message_id)
        for row in rows
        if row.message_id is not None
        and (row.provider, row.provider_message_id) not in found
        and (row.provider, row.provider_message_id) not in in_parts
    }
    if not ours:
        return {}
    matched = {}
    # Only a message handed over whose answer never came: unknown, or still sending with
    # its hand-over marked (a worker died after it). Never one queued, refused or settled.
    lost = sa.or_(
        messages.c.status == Status.UNKNOWN.value,
        sa.and_(messages.c.status == Status.SENDING.value, messages.c.handed_at.is_not(None)),
    )
    for message_id, provider in conn.execute(
        sa.select(messages.c.id, messages.c.provider).where(
            messages.c.id.in_(list(ours)), messages.c.provider_message_id.is_(None), lost
        )
    ):
        pair = ours[message_id]
        if pair[0] == provider:
            conn.execute(
                messages.update()
                .where(messages.c.id == message_id, messages.c.provider_message_id.is_(None))
                .values(provider_message_id=pair[1])
            )
            matched[pair] = message_id
    return matched


def _apply(conn: Connection, matched: list[tuple[Any, int]]) -> list[bool]:
    """Apply receipts to their messages in bulk, in order, forward only (the rules of
    ``campaigns.status``, as ``ledger.messages`` applies them one at a time): the rows
    are locked and read once, then written in a few statements, however many there are.
    ``matched``: (receipt, message id), the receipt a ``receipts`` row or a message's state
    decided by its parts (``ledger.parts.MessageReceipt``, whose part the event names).
    Returns, per receipt, whether it moved its message."""
    if not matched:
        return []
    ids = sorted({message_id for _, message_id in matched})
    current = {
        message_id: (Status(status), campaign_id)
        for message_id, status, campaign_id in conn.execute(
            sa.select(messages.c.id, messages.c.status, campaigns.c.id)
            # pragma below: without the onclause, the join follows the same foreign key
            .join(campaigns, campaigns.c.key == messages.c.campaign_key)  # pragma: no mutate
            .where(messages.c.id.in_(ids))
            .with_for_update(of=messages)
        )
    }
    at, moved, changes, logged = now(), [], {}, []
    for row, message_id in matched:
        old, campaign_id = current[message_id]
        new = Status(row.status)
        if not can_move(old, new):
            moved.append(False)  # pragma: no mutate (None: as false, the receipt is ignored)
            continue
        current[message_id] = (new, campaign_id)
        values = changes.setdefault(message_id, {"mid": message_id})
        values.update(status=new.value, updated_at=at, claim_token=None)
        if new in FINAL:
            values["final_at"] = at
        # The provider's code explains an undelivered message; any other has none.
        # (cut to its column: a receipt stored before codes were checked can be longer;
        # the event below keeps it whole)
        code = row.code[: LIMITS["code"]] if row.code else None
        values["error_code"] = code if new is Status.UNDELIVERED else None
        detail: dict[str, Any] = {"received_at": row.received_at.astimezone(UTC).isoformat()}
        if row.network:
            detail["network"] = row.network
        part = getattr(row, "part", None)  # decided by this part's receipt (ledger.parts)
        if part is not None:
            detail["part"] = part
        logged.append(
            {
                "campaign_id": campaign_id,
                "message_id": message_id,
                "at": at,
                "source": "receipt",
                "from_status": old.value,
                "to_status": new.value,
                "code": row.code,
                "detail": detail,
            }
        )
        moved.append(True)
    # One executemany per shape of change (final or not, with an error code or not).
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for values in changes.values():
        shapes.setdefault(frozenset(values), []).append(values)
    for shape, group in shapes.items():
        columns = {name: sa.bindparam(name) for name in shape if name != "mid"}
        conn.execute(
            messages.update().where(messages.c.id == sa.bindparam("mid")).values(**columns),
            group,
        )
    if logged:
        conn.execute(events.insert(), logged)
    return moved


# pragma below: how many a pass takes; every pass until none is left, whatever its size
def drain_all(engine: Engine, limit: int = 1000) -> dict[str, int]:  # pragma: no mutate
    """Drain until no new receipt is left (waiting ones are tried once). Returns totals."""
    totals = {APPLIED: 0, IGNORED: 0, WAITING: 0, UNMATCHED: 0, FLAGGED: 0}
    while True:
        counts = drain(engine, limit)
        for state, count in counts.items():
            totals[state] += count
        if sum(counts.values()) < limit:
            return totals
