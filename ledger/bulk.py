"""Writing many rows fast, the way each database likes it.

A million-row launch spends most of its time here, so rows are plain tuples and go
straight to the driver: ``executemany`` with a statement compiled once on SQLite, ``COPY``
on PostgreSQL (an order of magnitude faster than INSERTs there). Values must already be
in the database's terms: strings, numbers, JSON as text, no datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def insert_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` in the current transaction."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
    order = [list(columns).index(name) for name in compiled.positiontup or ()]
    if order != list(range(len(columns))):
        rows = [tuple(row[i] for i in order) for row in rows]
    conn.exec_driver_sql(str(compiled), rows)  # type: ignore[arg-type]


def _copy(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    names = ", ".join(f'"{c}"' for c in columns)
    with dbapi.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def refresh_statistics(conn: Connection, *tables: sa.Table) -> None:
    """Have PostgreSQL sample ``tables`` again (``ANALYZE``, in the current transaction,
    which sees its own rows), after a bulk write that changed their shape: until
    autovacuum gets to them, the planner believes a campaign of a million has five rows
    and joins them by nested loops (a goal section took 8.4 s where it takes 2 with the
    statistics fresh). Samples 30,000 rows a table whatever its size. SQLite: nothing."""
    if conn.dialect.name == "postgresql":
        for table in tables:
            conn.exec_driver_sql(f'ANALYZE "{table.name}"')
