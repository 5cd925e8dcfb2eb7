"""Schema migrations (alembic), run from code so that ``loa db upgrade`` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from ledger.db import LedgerError, display_url

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, ``None`` for an empty database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise LedgerError(
            f"cannot reach the ledger at {display_url(engine.url)}: {exc.orig}"
        ) from None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the ledger to the newest schema. Returns (revision before, revision after)."""
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
