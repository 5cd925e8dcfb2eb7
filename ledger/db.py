"""Connecting to the ledger: SQLite (embedded default) or PostgreSQL (production).

SQLite is made to behave under several worker threads: WAL journal, a busy timeout, and
every transaction opened with ``BEGIN IMMEDIATE`` so that two writers queue for the lock
instead of one failing with "database is locked" when it upgrades a read to a write.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from campaigns.files import create_private, private_folder
from ledger.redact import mask_url, redact


class LedgerError(RuntimeError):
    """The ledger cannot be used (unreachable, not migrated …); the message says why."""


def normalise_url(url: str | URL) -> URL:
    """Pick our drivers: ``postgresql://`` means psycopg 3, ``sqlite://`` the stdlib one."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def ledger_file(url: str | URL) -> Path | None:
    """The file an SQLite ledger lives in, or ``None`` (PostgreSQL, an in-memory or URI
    SQLite): what a command must neither overwrite nor, when absent, create to answer."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def display_url(url: str | URL) -> str:
    """The ledger's URL for people and logs: its password masked wherever it is given
    (userinfo or query, ``ledger.redact.mask_url``). Never raises: a URL SQLAlchemy
    cannot read is shown as it was given, masked the same way."""
    try:
        text = normalise_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: shown as given, masked all the same
        text = url if isinstance(url, str) else repr(url)
    return mask_url(text)


def _private_ledger_file(path: Path) -> None:
    """Make the ledger file, empty, for its owner only (0600) when it is absent, and its
    missing folders 0700: it holds every recipient's number. SQLite gives the ``-wal`` and
    ``-shm`` files it makes beside it the database file's own mode, so they are private
    too. A ledger already there keeps the mode its owner gave it (one may have let an
    auditors' group read it on purpose).

    Raises:
        LedgerError: the path is a symbolic link (planted, it would put the ledger, made
            with the link target's mode, wherever it points).
    """
    private_folder(path.parent)
    with suppress(FileExistsError):
        create_private(path).close()  # SQLite takes an empty file as an empty database
    if path.is_symlink():  # SQLite would follow it and make the ledger wherever it points
        raise LedgerError(
            f"{path}: the ledger is a symbolic link; Loa writes no ledger through a link "
            "(point LOA_VAR_DIR or LOA_DATABASE_URL at the real file)"
        )


def _sqlite_engine(url: URL) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=16,
        hide_parameters=True,
    )
    ledger = ledger_file(url)
    if ledger is not None:
        made: list[bool] = []

        # At the first connection, not here: a command refusing bad input before it
        # touches the ledger leaves no file behind. Once it succeeded, never again (the
        # pool opens up to 16 connections).
        @sa.event.listens_for(engine, "do_connect")
        def _private(*_: Any) -> None:
            if not made:
                _private_ledger_file(ledger)
                made.append(True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 32 MB of page cache (default 2 MB): a million-row launch inserts into the
        # (campaign, recipient) index at random places, and this holds that index whole.
        cursor.execute("PRAGMA cache_size=-32000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str | URL) -> Engine:
    """An engine for the ledger at ``url``. Its errors never carry a statement's values
    (``hide_parameters``): they are phone numbers, message texts and a provider's tokens,
    and an error's text reaches logs and terminals.

    Raises:
        LedgerError: ``url`` is not a database URL Loa can use (malformed, unknown
            database or driver); the message shows it with its password masked.
    """
    try:
        parsed = normalise_url(url)
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return sa.create_engine(
            parsed, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
        )
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:
        raise LedgerError(
            f"the ledger URL {display_url(url)} cannot be used: {redact(str(exc))}"
        ) from None


def statement_engine(engine: Engine) -> Engine:
    """An engine for the sending hot path, where each write is one statement (atomic on
    its own): on PostgreSQL in autocommit and without a ping at checkout, so a write is
    one round trip instead of four (ping, BEGIN, statement, COMMIT; measured: 289 µs of
    the worker's CPU for a 32-row UPDATE in a transaction after a ping, 88 µs alone).
    A connection the server dropped fails its statement once (the caller's error path)
    and SQLAlchemy then replaces the pool's connections. SQLite: ``engine`` itself (its
    hot path takes several statements under one write lock)."""
    if engine.url.get_backend_name() == "sqlite":
        return engine
    return sa.create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=10,
        max_overflow=10,
        hide_parameters=True,
    )


def describe_location(engine: Engine) -> str:
    """Where the ledger is: a file path for SQLite, the masked URL otherwise."""
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        return str(Path(engine.url.database).resolve())
    return display_url(engine.url)
