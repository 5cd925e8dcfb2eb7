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


def test_a_ledger_sealed_before_the_tree_verifies_after_the_upgrade(
    ledger_url, monkeypatch
) -> None:
    """Issue #21: the chain migrates as it is. A ledger at 0010 (no checkpoints, verdicts
    without roots, no channels: its launch digest as Loa computed it then), its events
    sealed and a verdict recorded, is upgraded: its events are the tree's leaves in their
    seal order, the old verdict is held by its head, the old digest still holds, and the
    log verifies."""
    import hashlib

    def digest_of_0010(conn, key, batches=(0, 2**31 - 1)):
        rows = conn.execute(
            sa.text(
                "SELECT id, carrier, parts FROM messages WHERE campaign_key = :key "
                "AND batch BETWEEN :low AND :high ORDER BY id"
            ),
            {"key": key, "low": batches[0], "high": batches[1]},
        )
        lines = (f"{i},{carrier or ''},{parts}" for i, carrier, parts in rows)
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    monkeypatch.setattr("ledger.intake.rows_digest", digest_of_0010)
    from alembic import command

    from ledger.audit.log import make_checkpoint
    from ledger.audit.verify import verify_log
    from ledger.chain import seal_all
    from ledger.migrate import _config
    from tests.ledger.test_chain import campaign_with_events

    engine = make_engine(ledger_url)
    try:
        config = _config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0010")
        campaign_with_events(engine)
        seal_all(engine)
        with engine.begin() as conn:  # a verdict as 0010 recorded it: a head, no root
            head = conn.scalar(sa.text("SELECT hash FROM seals ORDER BY seq DESC LIMIT 1"))
            conn.execute(
                sa.text(
                    "INSERT INTO verifications (at, ok, sealed, head) "
                    "VALUES (CURRENT_TIMESTAMP, :ok, 16, :head)"
                ),
                {"ok": True, "head": head},
            )
        assert upgrade(engine) == ("0010", HEAD)
        verdict = verify_log(engine)
        assert verdict.ok and verdict.sealed == 16 and verdict.checkpoints == 1
        make_checkpoint(engine, "loa", bytes(range(1, 33)))
        assert verify_log(engine).ok
    finally:
        engine.dispose()
