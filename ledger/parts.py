"""Receipts for the parts of a message sent as several submissions (a provider that
submits a long message part by part: each part with its own id and its own delivery
receipt), and the message's state worked out from all of them.

The receipt drainer (``ledger.receipts.drain``) looks a receipt's provider id up here
first: part 1's id is also the message's own (``messages.provider_message_id``), so a
lookup in ``messages`` first would let part 1's receipt decide the whole message. A
receipt that names a part is recorded on the part, forward only, by the rules messages
follow (``campaigns.status``; a part without a final receipt counts as ``sent``): a
status that is not final (``sent``: accepted, en route) changes nothing,
and a final one is never replaced, except ``unknown`` by a real one. The message's state
is then ``combine``'d from all its parts and applied to the message by the same
forward-only path as a whole message's receipt (``ledger.receipts._apply``), which logs
the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaigns.status import FINAL, Status, can_move
from ledger.schema import message_parts, now

#: The width of ``message_parts.code``: a longer code is cut there (its event keeps it).
CODE_LENGTH = 32


@dataclass(frozen=True, slots=True)
class PartState:
    """One part as ``combine`` sees it: its final status (``None``: no final receipt yet)
    and the provider's code that came with it."""

    status: Status | None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A message's state worked out from its parts: ``status``, and the code of the part
    that decided it when that part failed (``None`` otherwise)."""

    status: Status
    code: str | None = None


def combine(parts: Sequence[PartState]) -> Decision | None:
    """The state a message of several parts is in, from its parts' receipts.

    ``parts``: every part of the message, those with a final status in the order their
    final receipt arrived (the others anywhere). The rule, in this order:

    1. every part ``delivered``: ``delivered``;
    2. any part with a final status other than ``delivered`` or ``unknown``
       (``undelivered``, ``expired``, ``failed``): that status, with that part's code, the
       first such part if several (the recipient cannot read the whole text, and the
       first failure is the one that ended the message: statuses move forward only);
    3. every part final, ``delivered`` and ``unknown`` mixed: ``unknown``;
    4. otherwise ``None``: some part has no final receipt yet, the message stays as it is.

    An empty ``parts`` decides nothing. Pure: no ledger, no clock.
    """
    if not parts:
        return None
    if all(part.status is Status.DELIVERED for part in parts):
        return Decision(Status.DELIVERED)
    for part in parts:
        if part.status in FINAL and part.status not in (Status.DELIVERED, Status.UNKNOWN):
            return Decision(part.status, part.code)
    if all(part.status in FINAL for part in parts):
        return Decision(Status.UNKNOWN)
    return None


@dataclass(frozen=True, slots=True)
class PartRef:
    """Where a receipt's provider id was found: the part's row, message and number."""

    row_id: int
    message_id: int
    part: int


@dataclass(frozen=True, slots=True)
class MessageReceipt:
    """A receipt as ``ledger.receipts._apply`` reads it, made for a whole message from
    its parts: the combined status and code, with the deciding receipt's network and
    time of arrival, and the part it named (for the event)."""

    id: int
    status: str
    code: str | None
    network: str | None
    received_at: datetime
    part: int


def find(conn: Connection, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], PartRef]:
    """The part each (provider, provider id) names, if any. An id the SMSC handed out
    twice names the newest part that has it (the highest row id): an SMSC reusing ids
    receipts its latest submission."""
    if not wanted:
        return {}
    found: dict[tuple[str, str], PartRef] = {}
    query = sa.select(
        message_parts.c.id,
        message_parts.c.message_id,
        message_parts.c.part,
        message_parts.c.provider,
        message_parts.c.provider_message_id,
    ).where(sa.tuple_(message_parts.c.provider, message_parts.c.provider_message_id).in_(wanted))
    for row_id, message_id, part, provider, pid in conn.execute(query):
        known = found.get((provider, pid))
        if known is None or row_id > known.row_id:
            found[(provider, pid)] = PartRef(row_id, message_id, part)
    return found


def record(
    conn: Connection, matched: list[tuple[Any, PartRef]]
) -> tuple[list[bool], list[tuple[MessageReceipt, int]]]:
    """Record receipts (``receipts`` rows, in the order received) on the parts they
    name, in the caller's transaction, and work out each touched message's state.

    Every part of the messages named is read once and locked (on PostgreSQL: drainers
    that hold receipts for parts of the same message take turns, so neither combines
    from a stale view), then the changed parts are written in one statement.

    Returns, per receipt, whether it moved its part; and, for each receipt that did and
    after which ``combine`` decided something, that decision as a receipt for the whole
    message, with the message's id, in the same order (``ledger.receipts._apply`` then
    moves the message forward only: a decision that does not move it changes nothing).
    """
    if not matched:
        return [], []
    message_ids = sorted({ref.message_id for _, ref in matched})
    query = (
        sa.select(
            message_parts.c.id,
            message_parts.c.message_id,
            message_parts.c.status,
            message_parts.c.code,
            message_parts.c.updated_at,
        )
        .where(message_parts.c.message_id.in_(message_ids))
        .order_by(message_parts.c.id)  # one lock order for every drainer: no deadlock
        .with_for_update()
    )
    # Each message's parts, in the order their final receipt arrived: earlier passes'
    # by the time each was recorded, then this pass's in the order received.
    states: dict[int, dict[int, PartState]] = {m: {} for m in message_ids}
    rows = sorted(conn.execute(query), key=lambda r: (r.status is not None, r.updated_at, r.id))
    for row_id, message_id, status, code, _ in rows:
        states[message_id][row_id] = PartState(Status(status) if status else None, code)
    at, moved, changes, decided = now(), [], {}, []
    for receipt, ref in matched:
        parts = states[ref.message_id]
        old, new = parts[ref.row_id].status or Status.SENT, Status(receipt.status)
        if not can_move(old, new):  # not final, or a final one already there
            moved.append(False)
            continue
        del parts[ref.row_id]  # to the end: the latest final receipt of the message
        parts[ref.row_id] = PartState(new, receipt.code)  # whole, for the event
        changes[ref.row_id] = {
            "pid_row": ref.row_id,
            "status": new.value,
            "raw_status": receipt.raw_status,
            "code": receipt.code[:CODE_LENGTH] if receipt.code else None,
            "updated_at": at,
        }
        moved.append(True)
        decision = combine(list(parts.values()))
        if decision is not None:
            failed = decision.status not in (Status.DELIVERED, Status.UNKNOWN)
            whole = MessageReceipt(
                receipt.id,
                decision.status.value,
                # The failing part's code explains the message; else the deciding receipt's.
                decision.code if failed else receipt.code,
                receipt.network,
                receipt.received_at,
                ref.part,
            )
            decided.append((whole, ref.message_id))
    if changes:
        conn.execute(
            message_parts.update()
            .where(message_parts.c.id == sa.bindparam("pid_row"))
            .values(
                status=sa.bindparam("status"),
                raw_status=sa.bindparam("raw_status"),
                code=sa.bindparam("code"),
                updated_at=sa.bindparam("updated_at"),
            ),
            list(changes.values()),
        )
    return moved, decided
