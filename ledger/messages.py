"""Moving messages through their statuses, the only way the ledger's rows change.

Each change is one short transaction: the row is updated only if its current status may
move to the new one (``campaigns.status``), and the change is appended to ``events``.
No transaction is held open while a provider is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import FINAL, Status, can_move, sources_of
from ledger.schema import campaigns, events, key_of, messages, now


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    recipient: str
    language: str
    encoding: str
    parts: int
    attempts: int
    fields: tuple[str, ...]  # the list's other cells (campaigns.list_columns order)
    valid_until: datetime | None = None  # its own, when shorter than its campaign's
    claim: str = ""  # the claim's token: only its holder may hand the message over


def _log_moves(
    conn: Connection,
    campaign_id: str,
    which: sa.ColumnElement[bool],
    old: Status,
    new: Status,
    source: str,
    at: datetime,
    with_provider: bool = False,
    code: str | None = None,
) -> None:
    """One event per message matching ``which``, for a move made in bulk (one INSERT);
    ``with_provider``: its detail names the message's provider (a claim's: the log then
    says which provider each message was sent to, ``ledger.audit.verify``); ``code``:
    the code the move leaves on the rows."""
    columns = ["campaign_id", "message_id", "at", "source", "from_status", "to_status"]
    values: list[Any] = [
        sa.literal(campaign_id),
        messages.c.id,
        # ``at`` is the ledger's clock (UTC-aware): stored alike with the type inferred
        # from it.
        sa.literal(at, type_=events.c.at.type),  # pragma: no mutate
        sa.literal(source),
        sa.literal(old.value),
        sa.literal(new.value),
    ]
    if with_provider:
        build = "json_build_object" if conn.dialect.name == "postgresql" else "json_object"
        columns.append("detail")
        values.append(getattr(sa.func, build)("provider", messages.c.provider))
    if code is not None:
        columns.append("code")
        values.append(sa.literal(code))
    conn.execute(events.insert().from_select(columns, sa.select(*values).where(which)))


# PostgreSQL: the claim, its events and the claimed rows in one statement, one round trip
# (a worker claims a batch every few dozen milliseconds at full speed; the portable path
# below takes five). Atomic on its own: the caller may run it in autocommit. Run as the
# driver's own SQL: SQLAlchemy's result processing cost 2.5 µs a row here, five times
# the driver's (measured on a 200-row claim), in the thread that shares the interpreter
# with the sending loop.
_PG_CLAIM = """
    WITH claimed AS (
        UPDATE messages SET status = 'sending', claim_token = %(token)s,
            claimed_at = %(at)s, handed_at = NULL, updated_at = %(at)s,
            attempts = attempts + 1, error_code = NULL
        WHERE campaign_key = (SELECT key FROM campaigns WHERE id = %(campaign_id)s)
            AND batch = %(batch)s AND status = 'queued'
            AND (%(provider)s::varchar IS NULL OR provider = %(provider)s)
        RETURNING id, recipient, language, encoding, parts, attempts, fields, valid_until,
            provider
    ),
    logged AS (
        INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status, detail)
        SELECT %(campaign_id)s, id, %(at)s, 'worker', 'queued', 'sending',
            json_build_object('provider', provider) FROM claimed
    )
    SELECT id, recipient, language, encoding, parts, attempts, fields, valid_until
    FROM claimed ORDER BY id
"""


def claim_batch(
    engine: Engine,
    campaign_id: str,
    batch: int,
    provider: str | None = None,
    token: str | None = None,
) -> list[ClaimedMessage]:
    """Claim the batch's ``queued`` messages for sending (``queued -> sending``).

    One conditional UPDATE marks every claimable row with a fresh token, so two workers
    running the same batch (a redelivered job) split nothing: the second finds no row.
    With ``provider``, only that provider's rows: after a halt moved some of a batch to
    a fallback provider, each provider's job claims its own. On PostgreSQL one statement
    (``engine`` may be in autocommit); elsewhere one transaction.

    ``token`` (32 characters; a fresh one when not given) marks the claim: a worker
    registers it as held before claiming (``worker.processes.liveness``), so that the reaper can
    tell a live batch's rows from a dead one's.

    Returns:
        The claimed messages in id order, attempts already counting this one.
    """
    token, at = token or uuid.uuid4().hex, now()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            params = {"token": token, "at": at, "campaign_id": campaign_id, "batch": batch}
            rows = conn.exec_driver_sql(_PG_CLAIM, {**params, "provider": provider}).all()
        else:
            rows = _claim_portable(conn, campaign_id, batch, provider, token, at)
    # Times in UTC, as the ledger reads them (the driver's come in the session's zone).
    return [
        ClaimedMessage(*row[:-2], tuple(row[-2] or ()), row[-1] and row[-1].astimezone(UTC), token)
        for row in rows
    ]


def _claim_portable(
    conn: Connection,
    campaign_id: str,
    batch: int,
    provider: str | None,
    token: str,
    at: datetime,
) -> Sequence[sa.Row[Any]]:
    """``claim_batch`` in three statements, in the caller's transaction."""
    claimable = [
        messages.c.campaign_key == key_of(campaign_id),
        messages.c.batch == batch,
        messages.c.status == Status.QUEUED.value,
    ]
    if provider is not None:
        claimable.append(messages.c.provider == provider)
    claimed = conn.execute(
        messages.update()
        .where(*claimable)
        .values(
            status=Status.SENDING.value,
            claim_token=token,
            claimed_at=at,
            handed_at=None,
            updated_at=at,
            attempts=messages.c.attempts + 1,
            error_code=None,
        )
    ).rowcount
    if not claimed:
        return []
    # The batch's own index finds the rows; the token picks this claim's among them.
    mine = sa.and_(
        messages.c.campaign_key == key_of(campaign_id),
        messages.c.batch == batch,
        messages.c.claim_token == token,
    )
    _log_moves(conn, campaign_id, mine, Status.QUEUED, Status.SENDING, "worker", at, True)
    return conn.execute(
        sa.select(
            messages.c.id,
            messages.c.recipient,
            messages.c.language,
            messages.c.encoding,
            messages.c.parts,
            messages.c.attempts,
            messages.c.fields,
            messages.c.valid_until,
        )
        .where(mine)
        # Unobservable on SQLite (its one user): the batch's rows come in rowid order.
        .order_by(messages.c.id)  # pragma: no mutate
    ).all()


def _move(
    conn: Connection,
    message_id: int,
    new: Status,
    source: str,
    code: str | None = None,
    detail: dict[str, Any] | None = None,
    claim: str | None = None,
    unhanded: bool = False,
    **values: Any,
) -> Status | None:
    """Move one message to ``new`` if allowed (and, with ``claim``, only while the row is
    under that claim token; with ``unhanded``, only while it was never marked handed to
    the provider). Returns the old status, or ``None`` when the move was refused (a
    duplicate or late update, another claim, a hand-over since) and nothing changed."""
    query = (
        sa.select(
            messages.c.status,
            messages.c.claim_token,
            messages.c.handed_at,
            campaigns.c.id.label("campaign_id"),
        )
        # Without its ON clause SQLAlchemy infers the same one from the foreign key.
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)  # pragma: no mutate
        .where(messages.c.id == message_id)
    )
    row = conn.execute(query.with_for_update(of=messages)).first()
    if row is None or (claim is not None and row.claim_token != claim):
        return None
    if unhanded and row.handed_at is not None:
        return None
    old = Status(row.status)
    if new is Status.QUEUED and _cancelled(conn, message_id):
        # Given back after its campaign was cancelled: nothing would ever take it again.
        new, code, values = Status.CANCELLED, "campaign_cancelled", {}
    if not can_move(old, new):
        return None
    at = now()
    if new in FINAL:
        values.setdefault("final_at", at)
    if new is not Status.SENDING:
        values.setdefault("claim_token", None)  # pragma: no mutate (None: setdefault's own)
    # A status carries the code of the move that put the message there, or none: a
    # message sent after a failed attempt does not keep that attempt's code (the
    # events keep every attempt's).
    values.setdefault("error_code", code)
    conn.execute(
        messages.update()
        .where(
            messages.c.id == message_id,
            # A second guard: the row is locked since it was read (FOR UPDATE; on SQLite,
            # BEGIN IMMEDIATE), so its status cannot have changed.
            messages.c.status.in_([s.value for s in sources_of(new)]),  # pragma: no mutate
        )
        .values(status=new.value, updated_at=at, **values)
    )
    conn.execute(
        events.insert().values(
            campaign_id=row.campaign_id,
            message_id=message_id,
            at=at,
            source=source,
            from_status=old.value,
            to_status=new.value,
            code=code,
            detail=detail,
        )
    )
    return old


def _cancelled(conn: Connection, message_id: int) -> bool:
    """Whether the message's campaign is cancelled, read under a shared lock on the
    campaign's row: ``cancel_campaign`` updates that row first, so a release and a cancel
    never interleave (either the cancel comes first and the release sees it, or the
    release commits first and the cancel's sweep finds the row ``queued``)."""
    state = conn.scalar(
        sa.select(campaigns.c.state)
        .where(
            campaigns.c.key
            == sa.select(messages.c.campaign_key)
            .where(messages.c.id == message_id)
            .scalar_subquery()
        )
        .with_for_update(read=True)
    )
    return state == "cancelled"


def record_outcome(
    engine: Engine,
    message_id: int,
    status: Status,
    source: str,
    code: str | None = None,
    claim: str | None = None,
    unhanded: bool = False,
) -> bool:
    """Move a message to ``status`` (failed, unknown, expired, queued …) with the code that
    explains it; with ``claim``, only if the row is still under that claim token (the
    reaper's moves: a row claimed again since is another worker's); with ``unhanded``,
    only if it was never marked handed to the provider, checked under the same lock (the
    reaper giving a message back: one handed since it looked may be on its way out).
    Returns whether the status changed."""
    with engine.begin() as conn:
        moved = _move(conn, message_id, status, source, code=code, claim=claim, unhanded=unhanded)
        return moved is not None


def release(
    engine: Engine,
    message_ids: Sequence[int],
    code: str | None = None,
    refund: bool = False,
    claim: str | None = None,
) -> int:
    """Give claimed messages back (``sending -> queued``): the provider never processed
    them, so they may be sent later. ``refund`` takes back the attempt their claim
    counted (the provider was down: not the message's fault). With ``claim``, only the
    rows still under that claim token: a batch gives back its own, never a row the
    reaper took from it and another worker claimed and may be sending (given back, it
    was claimed a third time and sent twice). Returns how many moved."""
    released = 0
    with engine.begin() as conn:
        for message_id in message_ids:
            values: dict[str, Any] = {}
            if refund:
                values["attempts"] = messages.c.attempts - 1
            moved = _move(conn, message_id, Status.QUEUED, "worker", code, claim=claim, **values)
            released += moved is not None
    return released


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    matched: bool
    moved: bool


def apply_receipt(
    engine: Engine,
    provider: str,
    provider_message_id: str,
    status: Status,
    code: str | None,
    network: str | None = None,
) -> ReceiptOutcome:
    """Apply a delivery receipt: forward only, never out of a final status (except a real
    status correcting ``unknown``). A duplicate or late receipt changes nothing. The
    network that served the number, when the receipt names it, is kept in the event."""
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(messages.c.id).where(
                messages.c.provider == provider,
                messages.c.provider_message_id == provider_message_id,
            )
        ).first()
        if found is None:
            return ReceiptOutcome(matched=False, moved=False)
        return ReceiptOutcome(matched=True, moved=apply_in(conn, found.id, status, code, network))


def apply_in(
    conn: Connection,
    message_id: int,
    status: Status,
    code: str | None,
    network: str | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Apply one receipt to its message inside the caller's transaction (forward only).
    The event keeps the provider's code, the network that served the number and when
    the receipt was received, when known. Returns whether the status moved."""
    # The provider's code explains an undelivered message; a delivered one has none. Cut
    # to its column (32 characters), as the receipts' path does; the event keeps it whole.
    values = {"error_code": code[:32] if code and status is Status.UNDELIVERED else None}
    detail: dict[str, Any] = {"network": network} if network else {}
    if received_at is not None:
        detail["received_at"] = received_at.astimezone(UTC).isoformat()
    moved = _move(conn, message_id, status, "receipt", code=code, detail=detail or None, **values)
    return moved is not None


def set_campaign_state(
    engine: Engine, campaign_id: str, state: str, reason: str | None, source: str = "worker"
) -> None:
    """Operator-visible state of a campaign (``running``, ``paused``, ``halted`` …) and why;
    moved by an operator (``source="operator"``), the event says who (``by``)."""
    detail: dict[str, Any] = {"state": state, "reason": reason}
    if source == "operator":
        from ledger.audit.actions import actor

        detail["by"] = actor()
    with engine.begin() as conn:
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == campaign_id)
            .values(state=state, state_reason=reason)
        )
        conn.execute(
            events.insert().values(campaign_id=campaign_id, at=now(), source=source, detail=detail)
        )


def start_due(engine: Engine, moment: datetime | None = None) -> list[str]:
    """Scheduled campaigns whose start time has come become ``running`` (one conditional
    UPDATE each: two schedulers can never start one twice). Returns their ids."""
    moment = moment or now()
    with engine.begin() as conn:
        due = conn.scalars(
            sa.select(campaigns.c.id).where(
                # Equivalent without it: the conditional UPDATE below checks the state.
                campaigns.c.state == "scheduled",  # pragma: no mutate
                campaigns.c.start_at <= moment,
            )
        ).all()
        started = []
        for campaign_id in due:
            moved = conn.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id, campaigns.c.state == "scheduled")
                .values(state="running", state_reason=None)
            ).rowcount
            if moved:
                conn.execute(
                    events.insert().values(
                        campaign_id=campaign_id,
                        at=now(),
                        source="scheduler",
                        detail={"state": "running", "reason": "its start time came"},
                    )
                )
                started.append(campaign_id)
    return started


def cancel_campaign(engine: Engine, campaign_id: str) -> int:
    """Stop a campaign for good: its ``queued`` messages become ``cancelled`` (what a
    worker already claimed goes on to its own end); the event says who. Returns how many
    were cancelled."""
    from ledger.audit.actions import actor

    at = now()
    with engine.begin() as conn:
        # The campaign's row first: a release holding it (``_cancelled``) finishes before
        # this goes on, and one coming later sees the campaign cancelled.
        conn.execute(
            campaigns.update().where(campaigns.c.id == campaign_id).values(state="cancelled")
        )
        code, cancelled = "campaign_cancelled", 0
        # What waits to be sent, and a later channel's messages standing by for theirs.
        for old in (Status.QUEUED, Status.STANDBY):
            waiting = sa.and_(
                messages.c.campaign_key == key_of(campaign_id), messages.c.status == old.value
            )
            _log_moves(conn, campaign_id, waiting, old, Status.CANCELLED, "operator", at, code=code)
            cancelled += conn.execute(
                messages.update()
                .where(waiting)
                .values(status=Status.CANCELLED.value, updated_at=at, final_at=at, error_code=code)
            ).rowcount
        conn.execute(
            events.insert().values(
                campaign_id=campaign_id,
                at=at,
                source="operator",
                detail={"state": "cancelled", "cancelled": cancelled, "by": actor()},
            )
        )
    return cancelled
