"""The hot path of sending: marking groups of messages handed to a provider, and
recording the ones it accepted, in bulk.

A worker sending thousands of messages a second cannot afford a few round trips per
message, so these take whole groups: on PostgreSQL one statement each, with arrays (its
text never changes with the group's size, so it is compiled once and prepared by the
server); on SQLite a few statements under its write lock. Every other status change goes
through ``ledger.messages``, one message at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from campaigns.status import Status
from ledger.schema import events, message_parts, messages, now

# PostgreSQL: the hot statements take arrays, so their text never changes with the group's
# size (prepared by the server after a few runs) and each is one round trip. They run as
# the driver's own SQL (psycopg adapts lists to arrays itself): SQLAlchemy's processing of
# the parameters and rows cost more CPU than the driver, in the thread that shares the
# interpreter with the sending loop.
_PG_SENT_CTES = """
    WITH given AS (
        SELECT * FROM unnest(%(ids)s::bigint[], %(pids)s::varchar[]) AS g(id, pid)
    ),
    moved AS (
        UPDATE messages SET status = 'sent', provider_message_id = given.pid,
            sent_at = %(at)s, updated_at = %(at)s, claim_token = NULL, error_code = NULL
        FROM given WHERE messages.id = given.id AND messages.status = 'sending'
        RETURNING messages.id
    ),
    logged AS (
        INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status)
        SELECT %(campaign_id)s, id, %(at)s, 'worker', 'sending', 'sent' FROM moved
    )"""
#: The parts of messages sent as several submissions, in the same statement: the hot
#: path's engine commits each statement on its own (``ledger.db.statement_engine``), so a
#: second statement would not share the first's transaction. Every message given gets
#: its parts, moved or not (a receipt got there first); a replay inserts nothing.
_PG_PARTS_CTE = """,
    parted AS (
        INSERT INTO message_parts (message_id, part, provider, provider_message_id, updated_at)
        SELECT p.id, p.part, messages.provider, p.pid, %(at)s
        FROM unnest(%(part_ids)s::bigint[], %(part_nos)s::smallint[], %(part_pids)s::varchar[])
            AS p(id, part, pid)
        JOIN messages ON messages.id = p.id
        ON CONFLICT (message_id, part) DO NOTHING
    )"""
_PG_SENT = _PG_SENT_CTES + "\n    SELECT id FROM moved\n"
_PG_SENT_PARTS = _PG_SENT_CTES + _PG_PARTS_CTE + "\n    SELECT id FROM moved\n"
_PG_HANDED = """
    UPDATE messages SET handed_at = %(at)s
    WHERE id = ANY(%(ids)s::bigint[]) AND status = 'sending' AND claim_token = %(claim)s
    RETURNING id
"""


def mark_handed(engine: Engine, message_ids: Sequence[int], claim: str) -> set[int]:
    """Note that messages claimed under the token ``claim`` are about to be handed to the
    provider (one UPDATE for the group). Returns the ids still ``sending`` under that
    claim: the others were taken back by the reaper meanwhile, and perhaps claimed again
    by another worker, and must not be sent by this one (a batch that waited on a slow
    rate longer than the lease once sent messages another worker had claimed and sent)."""
    if not message_ids:
        return set()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            params = {"ids": list(message_ids), "at": now(), "claim": claim}
            return {row[0] for row in conn.exec_driver_sql(_PG_HANDED, params)}
        rows = conn.execute(
            messages.update()
            .where(
                messages.c.id.in_(message_ids),
                messages.c.status == Status.SENDING.value,
                messages.c.claim_token == claim,
            )
            .values(handed_at=now())
            .returning(messages.c.id)
        )
        return {row[0] for row in rows}


def record_sent(
    engine: Engine,
    campaign_id: str,
    sent: Sequence[tuple[int, str]],
    parts: Mapping[int, Sequence[str]] | None = None,
) -> int:
    """The provider accepted these messages (of one campaign): ``sending -> sent``, with
    the provider's ids. One statement on PostgreSQL (update and event log together), a
    few on SQLite, whatever the group's size: a worker sending thousands a second cannot
    afford four round trips per message. The provider's id is
    stored even when a receipt already moved the status past ``sent``, so later receipts
    match. Returns how many moved to ``sent``.

    ``parts``: by message id, every part's provider id in part order (the first being the
    message's own id, ``providers.base.SendResult.parts``), for messages sent as several
    submissions; one ``message_parts`` row each is inserted with the send, in the same
    statement on PostgreSQL, the same transaction on SQLite, for every message of ``sent``
    with more than one id, moved or not. Replay-safe: a part already recorded (the same
    message and part number) is left as it is. Without parts, nothing more is sent to the
    ledger than before."""
    if not sent:
        return 0
    at = now()
    changes = {
        "status": Status.SENT.value,
        "sent_at": at,
        "updated_at": at,
        "claim_token": None,
        "error_code": None,  # an earlier attempt's code does not explain a sent message
    }
    split = _parts_rows(sent, parts)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ids, pids = [i for i, _ in sent], [p for _, p in sent]
            params = {"ids": ids, "pids": pids, "at": at, "campaign_id": campaign_id}
            statement = _PG_SENT
            if split:
                statement = _PG_SENT_PARTS
                params["part_ids"] = [m for m, _, _ in split]
                params["part_nos"] = [n for _, n, _ in split]
                params["part_pids"] = [p for _, _, p in split]
            moved = {row[0] for row in conn.exec_driver_sql(statement, params)}
        else:
            # SQLite has no arrays; its write lock (BEGIN IMMEDIATE) makes this
            # look-then-update as safe as the single statement.
            ids = [message_id for message_id, _ in sent]
            moved = set(
                conn.execute(
                    sa.select(messages.c.id).where(
                        messages.c.id.in_(ids), messages.c.status == Status.SENDING.value
                    )
                ).scalars()
            )
            if moved:
                conn.execute(
                    messages.update()
                    .where(messages.c.id == sa.bindparam("m_id"))
                    .values(provider_message_id=sa.bindparam("m_pid"), **changes),
                    [{"m_id": i, "m_pid": p} for i, p in sent if i in moved],
                )
                _log_sent(conn, campaign_id, moved, at)
            if split:
                _insert_parts(conn, split, at)
        late = [{"m_id": i, "m_pid": p} for i, p in sent if i not in moved]
        if late:
            # A receipt got there first: keep the provider's id so later receipts match.
            conn.execute(
                messages.update()
                .where(
                    messages.c.id == sa.bindparam("m_id"),
                    messages.c.provider_message_id.is_(None),
                )
                .values(provider_message_id=sa.bindparam("m_pid")),
                late,
            )
    return len(moved)


def _parts_rows(
    sent: Sequence[tuple[int, str]], parts: Mapping[int, Sequence[str]] | None
) -> list[tuple[int, int, str]]:
    """(message id, part number from 1, provider id) for each part of each message of
    ``sent`` that went as more than one submission (a message sent whole has no rows)."""
    if not parts:
        return []
    return [
        (message_id, number, pid)
        for message_id, _ in sent
        if len(ids := parts.get(message_id, ())) > 1
        for number, pid in enumerate(ids, start=1)
    ]


def _insert_parts(conn: Connection, split: list[tuple[int, int, str]], at: datetime) -> None:
    """SQLite's insert of ``_PG_PARTS_CTE``: each part with its message's provider, a part
    already there left as it is."""
    provider = (
        sa.select(messages.c.provider)
        .where(messages.c.id == sa.bindparam("m_id"))
        .scalar_subquery()
    )
    insert = (
        sqlite_insert(message_parts)
        .values(
            message_id=sa.bindparam("m_id"),
            part=sa.bindparam("m_part"),
            provider=provider,
            provider_message_id=sa.bindparam("m_pid"),
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=["message_id", "part"])
    )
    conn.execute(insert, [{"m_id": m, "m_part": n, "m_pid": p} for m, n, p in split])


def _log_sent(conn: Connection, campaign_id: str, moved: set[int], at: datetime) -> None:
    conn.execute(
        events.insert(),
        [
            {
                "campaign_id": campaign_id,
                "message_id": message_id,
                "at": at,
                "source": "worker",
                "from_status": Status.SENDING.value,
                "to_status": Status.SENT.value,
                "code": None,
                "detail": None,
            }
            for message_id in moved
        ],
    )
