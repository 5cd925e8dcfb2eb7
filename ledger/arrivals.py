"""The ledger's side of arrivals (``campaigns.arrivals`` decides the rest): event ids
already taken, visitors welcomed lately, and each month's arrivals campaign, to which
welcomes are added as they come.

Every step is one statement that settles races by itself, so any number of processes on
any number of machines can ingest at once: an event id is taken by one ``INSERT … ON
CONFLICT DO NOTHING``; a visitor is welcomed by one conditional upsert (``ON CONFLICT DO
UPDATE … WHERE welcomed_at < cutoff``), which only one of two racing ingests wins; batch
numbers are allocated under the campaign row's lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from campaigns.plan import PlannedMessage
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from campaigns.stream import fields_json
from ledger.audit.rows import SPEC_COLUMNS, add_counts, rows_digest, spec_digest
from ledger.bulk import insert_rows
from ledger.intake import MESSAGE_COLUMNS
from ledger.schema import UtcDateTime, arrival_events, campaigns, events, messages, now, visitors

#: The arrivals campaign's list columns: each welcome's language and area (by name, so
#: reports break it down by district without being asked).
COLUMNS = ["language", "Huyện/Thành phố"]


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# Whole chunks in one fixed statement (an array on PostgreSQL, a JSON array on SQLite):
# compiled once, where a multi-row VALUES is compiled again for every chunk (measured:
# 0.1 ms a row, as much as everything else an arrival costs).
_TAKE = {
    "postgresql": "INSERT INTO arrival_events (event_id, received_at) "
    "SELECT unnest(CAST(:ids AS text[])), :at ON CONFLICT DO NOTHING RETURNING event_id",
    "sqlite": "INSERT INTO arrival_events (event_id, received_at) "
    "SELECT value, :at FROM json_each(:ids) WHERE true ON CONFLICT DO NOTHING RETURNING event_id",
}
_WELCOME = {
    "postgresql": "INSERT INTO visitors (recipient, welcomed_at) "
    "SELECT unnest(CAST(:numbers AS text[])), :at ON CONFLICT (recipient) DO UPDATE "
    "SET welcomed_at = excluded.welcomed_at WHERE visitors.welcomed_at < :cutoff RETURNING recipient",
    "sqlite": "INSERT INTO visitors (recipient, welcomed_at) "
    "SELECT value, :at FROM json_each(:numbers) WHERE true ON CONFLICT (recipient) DO UPDATE "
    "SET welcomed_at = excluded.welcomed_at WHERE visitors.welcomed_at < :cutoff RETURNING recipient",
}


def _run(
    conn: Connection, statements: dict[str, str], name: str, values: Sequence[str], **params: Any
) -> set[str]:
    dialect = conn.dialect.name
    listed: Any = list(values) if dialect == "postgresql" else json.dumps(list(values))
    statement = sa.text(statements[dialect]).bindparams(
        *(sa.bindparam(key, type_=UtcDateTime) for key in params)
    )
    return set(conn.execute(statement, {name: listed, **params}).scalars())


def take_events(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """Record these event ids as taken; returns those that were not taken before."""
    if not event_ids:
        return set()
    return _run(conn, _TAKE, "ids", event_ids, at=now())


def welcome_once(
    conn: Connection, recipients: Sequence[str], window: timedelta, at: datetime | None = None
) -> set[str]:
    """Of these (distinct) numbers, those not welcomed within ``window`` before ``at``
    (default: now), now marked welcomed at ``at``; the others were welcomed lately (here
    or on another machine)."""
    if not recipients:
        return set()
    at = at or now()
    return _run(conn, _WELCOME, "numbers", recipients, at=at, cutoff=at - window)


def arrivals_campaign(conn: Connection, spec: CampaignSpec, valid_until: datetime) -> int:
    """The key of the campaign ``spec.id``, created (running, empty) if it is not there
    yet; locked for this transaction, so batch numbers and counts are added in turn."""
    created = now()
    conn.execute(
        _insert(conn, campaigns)
        .values(
            id=spec.id,
            name=spec.name,
            category=spec.category.value,
            brandname=spec.brandname,
            provider=spec.provider,
            spec=spec.model_dump(mode="json"),
            list_name="arrivals",
            list_columns=COLUMNS,
            intake={},
            state="running",
            batches=0,
            created_at=created,
            valid_until=valid_until,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    query = sa.select(campaigns.c.key).where(campaigns.c.id == spec.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).scalar_one()


def add_welcomes(
    conn: Connection,
    key: int,
    campaign_id: str,
    groups: Iterable[tuple[Any, Sequence[tuple[PlannedMessage, datetime]]]],
    batch_size: int,
    counts: dict[str, Any],
) -> list[tuple[int, str, Any]]:
    """Append planned welcomes to the (locked) campaign: each group (``(due, [(welcome,
    valid until)])``: due at the same moment) in batches of one provider each, numbered
    after the campaign's last. ``counts`` are added to the campaign's intake counts. Returns
    (batch, provider, due) for each batch made."""
    (batches, intake) = conn.execute(
        sa.select(campaigns.c.batches, campaigns.c.intake).where(campaigns.c.key == key)
    ).one()
    first = batches + 1
    made: list[tuple[int, str, Any]] = []
    rows = []
    queued = Status.QUEUED.value
    for due, group in groups:
        by_provider: dict[str, list[tuple[PlannedMessage, datetime]]] = {}
        for planned, valid_until in group:
            by_provider.setdefault(planned.provider, []).append((planned, valid_until))
        for provider, planned_rows in by_provider.items():
            for start in range(0, len(planned_rows), batch_size):
                batches += 1
                made.append((batches, provider, due))
                rows += [
                    (
                        key, p.e164, p.country, p.carrier, p.row, p.language, p.encoding,
                        p.parts, batches, queued, provider, fields_json(p.values),
                        _stored(conn, valid_until),
                    )
                    for p, valid_until in planned_rows[start : start + batch_size]
                ]  # fmt: skip
    insert_rows(conn, messages, (*MESSAGE_COLUMNS, "valid_until"), rows)
    conn.execute(
        campaigns.update()
        .where(campaigns.c.key == key)
        .values(batches=batches, intake=add_counts(intake or {}, counts))
    )
    if counts.get("rows_read"):
        conn.execute(
            events.insert().values(
                campaign_id=campaign_id,
                at=now(),
                source="planner",
                to_status=queued,
                # This arrival's rows, by their batches, bound to the log (ledger.audit.rows).
                detail={
                    "arrivals": counts,
                    "welcomes": len(rows),
                    "batches": [first, batches],
                    "rows_digest": rows_digest(conn, key, (first, batches)),
                    # The campaign's spec as it is welcomed with (ledger.audit.rows).
                    "spec_digest": spec_digest(_launched(conn, key)),
                },
            )
        )
    return made


def _launched(conn: Connection, key: int) -> dict[str, Any]:
    """The campaign's columns its events commit to (``ledger.audit.rows.SPEC_COLUMNS``)."""
    columns = [campaigns.c[name] for name in SPEC_COLUMNS]
    row = conn.execute(sa.select(*columns).where(campaigns.c.key == key)).one()
    return dict(row._mapping)


def _stored(conn: Connection, moment: datetime) -> Any:
    """A time as the bulk insert hands it to the driver: PostgreSQL's COPY takes the
    aware time; SQLite gets the UTC text SQLAlchemy itself writes and reads back."""
    if conn.dialect.name == "postgresql":
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def prune(conn: Connection, window: timedelta) -> tuple[int, int]:
    """Forget event ids and visitors older than ``window`` (the dedupe window): a replay
    of a file that old is not protected, and a visitor that old is welcome again anyway.
    Returns (events, visitors) forgotten."""
    cutoff = now() - window
    taken = conn.execute(arrival_events.delete().where(arrival_events.c.received_at < cutoff))
    seen = conn.execute(visitors.delete().where(visitors.c.welcomed_at < cutoff))
    return taken.rowcount, seen.rowcount
