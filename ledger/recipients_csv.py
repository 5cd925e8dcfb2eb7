"""Each recipient's final state as CSV: the export's ``recipients.csv``
(``ledger.audit.export``) and a report's recipients sheet (``scripts.reports``).

Numbers are masked (``+8491*****78``), and every cell a spreadsheet would run as a
formula is neutralised with a leading quote (``campaigns.files.csv_cell``; an auditor's
checker takes it off again, ``plain_cell``). On PostgreSQL the server writes the rows
(``COPY``), byte for byte as the Python way does.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.files import SQL_PLAIN_NUMBER, SQL_RISKY_FIRST, as_text, csv_row, output
from campaigns.hours import VIETNAM
from campaigns.phones import mask
from ledger.chain import stamp
from ledger.schema import campaigns, messages

VIETNAM_ISO = "%Y-%m-%dT%H:%M:%S+07:00"  # Vietnam keeps UTC+7 all year
RECIPIENT_COLUMNS = (
    "message_id", "number", "country", "carrier", "provider", "status", "error_code",
    "attempts", "sent_at", "final_at",
)  # fmt: skip


@contextmanager
def _connected(ledger: Engine | Connection) -> Iterator[Connection]:
    """``ledger`` itself when it is a connection (inside its caller's transaction), else
    a new connection of the engine."""
    if isinstance(ledger, Connection):
        yield ledger
        return
    with ledger.connect() as conn:
        yield conn


def recipient_rows(
    ledger: Engine | Connection,
    campaign_id: str | None,
    times: Callable[[datetime], Any] = stamp,
    labels: Mapping[str, str] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Each recipient's final state, in ``RECIPIENT_COLUMNS`` order, the number masked
    (a number replaced after retention shows its HMAC, masked the same way). ``times``
    writes ``sent_at`` and ``final_at`` (default: the chain's UTC stamp; a report gives
    Vietnam's time, ``local_time``); ``labels`` names each status (default: as stored).
    ``ledger``: an engine, or a connection whose transaction the rows are read in."""
    labels = labels or {}
    query = sa.select(
        messages.c.id, messages.c.recipient, messages.c.country, messages.c.carrier,
        messages.c.provider, messages.c.status, messages.c.error_code, messages.c.attempts,
        messages.c.sent_at, messages.c.final_at,
    ).order_by(messages.c.id)  # fmt: skip
    if campaign_id is not None:
        query = query.join(campaigns, campaigns.c.key == messages.c.campaign_key).where(
            campaigns.c.id == campaign_id
        )
    with _connected(ledger) as conn:
        for row in conn.execution_options(yield_per=5000).execute(query):
            yield (
                row.id, mask(row.recipient), row.country, row.carrier or "", row.provider,
                labels.get(row.status, row.status), row.error_code or "", row.attempts,
                times(row.sent_at) if row.sent_at else "",
                times(row.final_at) if row.final_at else "",
            )  # fmt: skip


def local_time(at: datetime) -> str:
    """A time in Vietnam, ISO 8601 to the second with its offset: ``2026-11-30T20:49:49+07:00``."""
    return at.astimezone(VIETNAM).strftime(VIETNAM_ISO)


def _sql_cell(column: str) -> str:
    """``campaigns.files.csv_cell`` in PostgreSQL: the same quote on the same cells."""
    risky, plain = _sql_literal(SQL_RISKY_FIRST), _sql_literal(SQL_PLAIN_NUMBER)
    return (
        f"CASE WHEN {column} ~ {risky} AND {column} !~ {plain} "
        f"THEN '''' || {column} ELSE {column} END"
    )


def _sql_literal(pattern: str) -> str:
    """``pattern`` as an ``E'…'`` literal, with no raw control character in it."""
    escaped = pattern.replace("\\", "\\\\").replace("'", "''")
    return "E'" + escaped.replace("\t", "\\t").replace("\r", "\\r") + "'"


#: ``recipient_rows`` in SQL, for PostgreSQL's ``COPY``: a million rows leave the server as
#: CSV in about a second, where building each row in Python takes fifteen. The same
#: columns, mask (``campaigns.phones.mask``), time format (``ledger.chain.stamp``, or
#: ``local_time``), status labels and formula quote (``campaigns.files.csv_cell``); empty
#: values are NULL, so both ways write the same bytes (a test holds them to it).
_PG_RECIPIENTS = (
    "SELECT r.id, "
    + ", ".join(
        _sql_cell(f"r.{name}")
        for name in ("number", "country", "carrier", "provider", "status", "error_code")
    )
    + """, r.attempts, r.sent_at, r.final_at FROM (
SELECT m.id,
    CASE WHEN length(m.recipient) <= 7 THEN repeat('*', length(m.recipient))
         ELSE left(m.recipient, 5) || repeat('*', length(m.recipient) - 7) || right(m.recipient, 2)
    END AS number,
    m.country, m.carrier, m.provider, {status} AS status, m.error_code, m.attempts,
    to_char(m.sent_at AT TIME ZONE {zone}, {shape}) AS sent_at,
    to_char(m.final_at AT TIME ZONE {zone}, {shape}) AS final_at
FROM messages AS m {where}
) AS r
ORDER BY r.id
"""
)


def write_recipients(
    ledger: Engine | Connection,
    target: Path | BinaryIO,
    campaign_id: str | None,
    *,
    bom: bool = False,
    copy: bool = True,
    header: Sequence[str] = RECIPIENT_COLUMNS,
    labels: Mapping[str, str] | None = None,
    local: bool = False,
) -> dict[str, int]:
    """A CSV of each recipient's final state (``RECIPIENT_COLUMNS``, numbers masked,
    cells a spreadsheet would run as formulas quoted: ``campaigns.files.csv_cell``) to
    ``target``: an open binary file, or a path where a new private file is made (0600,
    never over an existing name). Returns the count per status (as stored). ``bom``:
    start with a UTF-8 byte-order mark, which spreadsheet programs need to read
    Vietnamese. On PostgreSQL (unless ``copy`` is false) the rows are made by the server
    (``COPY``), streamed to the file. For a report: ``header`` the columns' titles (in
    ``RECIPIENT_COLUMNS`` order), ``labels`` each status's name (default: as stored),
    ``local`` the times in Vietnam (``local_time``) instead of UTC stamps. ``ledger``: an
    engine, or a connection whose transaction the rows are read in.

    Raises:
        FileExistsError: ``target`` is a path already taken.
        OSError: the file cannot be written.
    """
    labels = labels or {}
    with output(target) as handle:
        if copy and ledger.dialect.name == "postgresql":
            return _copy_recipients(ledger, handle, campaign_id, bom, header, labels, local)
        statuses: dict[str, int] = {}
        status_at = RECIPIENT_COLUMNS.index("status")
        stored = {label: status for status, label in labels.items()}
        times = local_time if local else stamp
        with as_text(handle, "utf-8-sig" if bom else "utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(csv_row(header))
            for row in recipient_rows(ledger, campaign_id, times, labels):
                status = stored.get(row[status_at], row[status_at])
                statuses[status] = statuses.get(status, 0) + 1
                writer.writerow(csv_row(row))
    return statuses


def _copy_recipients(
    ledger: Engine | Connection,
    out: BinaryIO,
    campaign_id: str | None,
    bom: bool,
    header: Sequence[str],
    labels: Mapping[str, str],
    local: bool,
) -> dict[str, int]:
    from psycopg import sql

    where, status = sql.SQL(""), sql.SQL("m.status")
    if labels:
        status = sql.SQL("CASE m.status {} ELSE m.status END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(sql.Literal(key), sql.Literal(label))
                for key, label in labels.items()
            )
        )
    zone = sql.Literal("Asia/Ho_Chi_Minh" if local else "UTC")
    shape = sql.Literal(
        'YYYY-MM-DD"T"HH24:MI:SS"+07:00"' if local else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
    )
    counted = sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
    if campaign_id is not None:
        key = sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id).scalar_subquery()
        counted = counted.where(messages.c.campaign_key == key)
        where = sql.SQL("WHERE m.campaign_key = (SELECT key FROM campaigns WHERE id = {})").format(
            sql.Literal(campaign_id)
        )
    query = sql.SQL(_PG_RECIPIENTS).format(where=where, status=status, zone=zone, shape=shape)
    with _connected(ledger) as conn:
        statuses = dict(conn.execute(counted).all())
        cursor = conn.connection.driver_connection.cursor()
        with as_text(out, "utf-8-sig" if bom else "utf-8") as text:  # as the Python way
            csv.writer(text, lineterminator="\n").writerow(csv_row(header))
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
        with cursor.copy(copy_sql) as copy:
            for chunk in copy:
                out.write(chunk)
    return statuses
