"""The README's promise on migrations, through the ``loa`` command as operators run it:
on PostgreSQL Loa never migrates by itself (a shared production ledger is migrated on
purpose, once per release, by ``loa db upgrade``), so a command finding the ledger behind
says so and exits 1, changing nothing; the embedded SQLite ledger is migrated
automatically. ``test_migrate.py`` holds the rule itself; this holds the commands to it."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ledger.db import make_engine
from ledger.migrate import HEAD, current_revision, upgrade
from tests.scripts.test_cli import EXAMPLE, loa, small_list

#: Commands that open the ledger by different paths: a read (the list), a lookup of one
#: campaign, and a plan, which reads suppressions before any row.
COMMANDS = (
    ("campaign", "list", "--json"),
    ("campaign", "status", "bluezone-ninh-thuan-2020", "--json"),
    ("campaign", "plan", str(EXAMPLE), "--recipients", "{list}", "--json"),
)


def run(command: tuple[str, ...], tmp_path, url: str):
    args = [a.replace("{list}", str(small_list(tmp_path))) for a in command]
    return loa(*args, cwd=tmp_path, env={"LOA_DATABASE_URL": url})


def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_empty_postgresql_ledger_is_refused_and_left_empty(command, tmp_path, postgres_url):
    result = run(command, tmp_path, postgres_url)
    assert result.returncode == 1, result.stderr
    said = result.stderr.strip()
    assert "revision none" in said and "run `loa db upgrade`" in said
    assert "Traceback" not in said
    assert tables(postgres_url) == set()  # not one table created behind the operator's back


@pytest.mark.postgres
def test_a_postgresql_ledger_behind_stays_behind_and_every_command_says_so(tmp_path, postgres_url):
    engine = make_engine(postgres_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:  # as a ledger left by the release before the last
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0007'"))
    finally:
        engine.dispose()
    for command in COMMANDS:
        result = run(command, tmp_path, postgres_url)
        assert result.returncode == 1, (command, result.stderr)
        assert f"revision 0007, this Loa needs {HEAD}: run `loa db upgrade`" in result.stderr
        assert revision(postgres_url) == "0007"

    # Once current again, the same command goes ahead.
    engine = make_engine(postgres_url)
    try:
        with engine.begin() as conn:  # 0008 applied already: only the mark was turned back
            conn.execute(sa.text(f"UPDATE alembic_version SET version_num = '{HEAD}'"))
    finally:
        engine.dispose()
    listed = run(COMMANDS[0], tmp_path, postgres_url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["campaigns"] == []


@pytest.mark.postgres
def test_db_upgrade_migrates_an_empty_postgresql_ledger(tmp_path, postgres_url):
    upgraded = loa("db", "upgrade", "--json", cwd=tmp_path, env={"LOA_DATABASE_URL": postgres_url})
    assert upgraded.returncode == 0, upgraded.stderr
    assert revision(postgres_url) == HEAD
    listed = run(COMMANDS[0], tmp_path, postgres_url)
    assert listed.returncode == 0, listed.stderr


def test_an_empty_sqlite_ledger_is_migrated_by_the_first_command(tmp_path, sqlite_url):
    result = run(COMMANDS[0], tmp_path, sqlite_url)
    assert result.returncode == 0, result.stderr
    assert revision(sqlite_url) == HEAD
