"""The schema check every command makes: the ledger's version read without alembic, the
head known without it, and alembic used only to migrate."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from ledger.db import LedgerError, make_engine
from ledger.migrate import HEAD, MIGRATIONS, current_revision, ensure_current, upgrade


def test_head_is_the_newest_migration_alembic_finds() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_current_revision_from_empty_to_head(ledger_url) -> None:
    engine = make_engine(ledger_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == (None, HEAD)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_a_ledger_behind_is_refused_unless_auto(ledger_url) -> None:
    engine = make_engine(ledger_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0007'"))
        with pytest.raises(LedgerError, match="revision 0007, this Loa needs " + HEAD):
            ensure_current(engine, auto=False)
    finally:
        engine.dispose()


def test_an_empty_embedded_ledger_is_migrated(ledger_url) -> None:
    engine = make_engine(ledger_url)
    try:
        ensure_current(engine, auto=True)
        assert current_revision(engine) == HEAD
        ensure_current(engine, auto=False)  # current: nothing to refuse
    finally:
        engine.dispose()
