"""The hot path of sending: marking groups of messages handed to a provider, and
recording the ones it accepted, in bulk.

A worker sending thousands of messages a second cannot afford a few round trips per
message, so these take whole groups: on PostgreSQL one statement each, with arrays (its
text never changes with the group's size, so it is compiled once and prepared by the
server); on SQLite a few statements under its write lock. Every other status change goes
through ``ledger.messages``, one message at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.status import Status
from ledger.schema import events, messages, now

# PostgreSQL: the hot statements take arrays, so their text never changes with the group's
# size (prepared by the server after a few runs) and each is one round trip. They run as
# the driver's own SQL (psycopg adapts lists to arrays itself): SQLAlchemy's processing of
# the parameters and rows cost more CPU than the driver, in the thread that shares the
# interpreter with the sending loop.
_PG_SENT = """
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
    )
    SELECT id FROM moved
"""
_PG_HANDED = """
    UPDATE messages SET handed_at = %(at)s
    WHERE id = ANY(%(ids)s::bigint[]) AND status = 'sending' RETURNING id
"""


def mark_handed(engine: Engine, message_ids: Sequence[int]) -> set[int]:
    """Note that claimed messages are about to be handed to the provider (one UPDATE for
    the group). Returns the ids still ``sending``: the others were taken back by the
    reaper meanwhile and must not be sent."""
    if not message_ids:
        return set()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            params = {"ids": list(message_ids), "at": now()}
            return {row[0] for row in conn.exec_driver_sql(_PG_HANDED, params)}
        rows = conn.execute(
            messages.update()
            .where(messages.c.id.in_(message_ids), messages.c.status == Status.SENDING.value)
            .values(handed_at=now())
            .returning(messages.c.id)
        )
        return {row[0] for row in rows}


def record_sent(engine: Engine, campaign_id: str, sent: Sequence[tuple[int, str]]) -> int:
    """The provider accepted these messages (of one campaign): ``sending -> sent``, with
    the provider's ids. One statement on PostgreSQL (update and event log together), a
    few on SQLite, whatever the group's size: a worker sending thousands a second cannot
    afford four round trips per message. The provider's id is
    stored even when a receipt already moved the status past ``sent``, so later receipts
    match. Returns how many moved to ``sent``."""
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
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            ids, pids = [i for i, _ in sent], [p for _, p in sent]
            params = {"ids": ids, "pids": pids, "at": at, "campaign_id": campaign_id}
            moved = {row[0] for row in conn.exec_driver_sql(_PG_SENT, params)}
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
