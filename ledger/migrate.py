"""Schema migrations (alembic), run from code so that ``loa db upgrade`` needs no alembic.ini.

Alembic is imported only to migrate: checking that a ledger is current (every command
does it) reads the version table with SQLAlchemy and compares it with ``HEAD``, because
importing alembic costs a command a fifth of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from ledger.db import LedgerError, display_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

#: The newest migration in ``ledger/migrations/versions``; a test holds it equal to the
#: head alembic finds there, so a new migration cannot be forgotten here.
HEAD = "0018"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this code knows (``HEAD``)."""
    return HEAD


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, ``None`` for an empty database.

    Raises:
        LedgerError: the ledger cannot be reached.
    """
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except OperationalError as exc:
        raise LedgerError(
            f"cannot reach the ledger at {display_url(engine.url)}: {exc.orig}"
        ) from None
    # One row on a linear history; none (or, after a branch, several) is not current.
    return rows[0][0] if len(rows) == 1 else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the ledger to the newest schema. Returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head_revision()


def ensure_current(engine: Engine, *, auto: bool) -> None:
    """Make sure the schema is the newest before the ledger is used.

    Parameters:
        auto: migrate if needed (the embedded SQLite default: nobody else shares it);
            otherwise refuse, since a shared production database is migrated on purpose.

    Raises:
        LedgerError: the ledger is behind and ``auto`` is false, or unreachable.
    """
    current = current_revision(engine)
    if current == head_revision():
        return
    if auto:
        upgrade(engine)
        return
    raise LedgerError(
        f"the ledger at {display_url(engine.url)} is at revision {current or 'none'}, "
        f"this Loa needs {head_revision()}: run `loa db upgrade`"
    )
