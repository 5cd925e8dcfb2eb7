"""The ledger's files for their owner only, and its CSV cells unable to run, on both
backends: an export whose cells were quoted still verifies alone, PostgreSQL's ``COPY``
quotes exactly the cells Python does, and a new SQLite ledger and its journal are 0600."""

from __future__ import annotations

import csv
import os
import stat

import pytest
import sqlalchemy as sa

from campaigns.files import csv_cell, plain_cell
from ledger.audit.export import export
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.recipients_csv import _sql_cell, write_recipients
from scripts import verify_export
from tests.ledger.test_export import ORIGIN, SEED, check
from tests.ledger.test_ledger import SPEC
from tests.ledger.test_report import campaign

#: An error code as a hostile provider (or a man in the middle) could answer it.
HOSTILE_CODE = '=cmd|" /C calc"!A0'


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_an_export_with_cells_that_would_run_is_quoted_and_still_verifies(engine, tmp_path):
    campaign(engine, failure_code=HOSTILE_CODE)  # as the provider answered it
    previous = os.umask(0o022)
    try:
        manifest = export(engine, tmp_path / "exports" / "audit", SPEC.id, ORIGIN, SEED)
    finally:
        os.umask(previous)
    folder = tmp_path / "exports" / "audit"
    result = check(folder)
    assert result.returncode == 0, result.stdout
    assert manifest["statuses"]["failed"] == 1

    with (folder / "recipients.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    (failed,) = [row for row in rows if row["status"] == "failed"]
    assert failed["error_code"] == "'" + HOSTILE_CODE  # shown, never run
    assert plain_cell(failed["error_code"]) == HOSTILE_CODE
    assert all(row["number"].startswith("'+") for row in rows)  # a masked number is no number
    assert all(plain_cell(row["number"]).count("*") >= 5 for row in rows)

    # The export is its owner's alone: the folders Loa made 0700, every file 0600.
    assert mode(tmp_path / "exports") == 0o700 and mode(folder) == 0o700
    assert {p.name: mode(p) for p in folder.iterdir()} == dict.fromkeys(
        ["checkpoint.txt", "events.jsonl", "manifest.json", "recipients.csv", "verify_export.py"],
        0o600,
    )

    if engine.dialect.name == "postgresql":  # the server's COPY quotes the same cells
        by_server, by_python = tmp_path / "copy.csv", tmp_path / "python.csv"
        write_recipients(engine, by_server, SPEC.id, bom=True)
        write_recipients(engine, by_python, SPEC.id, bom=True, copy=False)
        assert by_server.read_bytes() == by_python.read_bytes()
        assert HOSTILE_CODE.replace('"', '""').encode() in by_server.read_bytes()
        # A report's: its own column titles, statuses named, times in Vietnam's.
        titles, named = [f"Cột {n}" for n in range(10)], {"failed": "Thất bại", "sent": "=Đã"}
        for path, copy in ((by_server, True), (by_python, False)):
            path.unlink()
            counted = write_recipients(
                engine, path, SPEC.id, bom=True, copy=copy, header=titles, labels=named, local=True
            )
            assert counted["failed"] == 1  # counted as stored, whatever the label
        assert by_server.read_bytes() == by_python.read_bytes()
        text = by_server.read_text(encoding="utf-8-sig")
        assert text.startswith("Cột 0,") and ",Thất bại," in text and ",'=Đã," in text
        assert "+07:00" in text and "Z," not in text


def test_the_checker_takes_off_exactly_the_quote_loa_added():
    for value in (HOSTILE_CODE, "-x", "'", "'=1", "delivered", "+84901234567", ""):
        assert verify_export.plain(csv_cell(value)) == value == plain_cell(csv_cell(value))


CELLS = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+8491*****78", "+84901234567", "-5", "3.5",
         "+.5", "-0.", "1e5", "-", "'", "''x", "\t1", "\r1", "\t", "٣", "+٣", "-5\n", "Ninh Hải",
         "", "h:K5Z***YP", "0912345678", "5.5.5"]  # fmt: skip


@pytest.mark.postgres
def test_postgresql_and_python_quote_the_same_cells(postgres_url):
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            for value in CELLS:
                quoted = conn.execute(
                    sa.text(f"SELECT {_sql_cell('v')} FROM (SELECT CAST(:v AS text) AS v) AS t"),
                    {"v": value},
                ).scalar_one()
                assert quoted == csv_cell(value), repr(value)
    finally:
        engine.dispose()


def test_a_new_sqlite_ledger_and_its_journal_are_private(tmp_path):
    database = tmp_path / "var" / "ledger" / "loa.db"
    previous = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{database.as_posix()}")
        upgrade(engine)
        with engine.connect() as conn:  # open: the -wal and -shm files are there
            conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one()
            made = {p.name: mode(p) for p in database.parent.iterdir()}
    finally:
        os.umask(previous)
        engine.dispose()
    assert made == {"loa.db": 0o600, "loa.db-wal": 0o600, "loa.db-shm": 0o600}
    assert mode(tmp_path / "var") == 0o700 and mode(database.parent) == 0o700


def test_a_ledger_its_owner_made_keeps_its_mode(tmp_path):
    database = tmp_path / "shared.db"
    database.touch(mode=0o640)  # an operator let an auditors' group read it
    os.chmod(database, 0o640)
    engine = make_engine(f"sqlite:///{database.as_posix()}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    assert mode(database) == 0o640


def test_a_link_planted_at_the_ledger_is_refused_and_nothing_made_where_it_points(tmp_path):
    """SQLite once followed it and made the ledger, 0644, wherever it pointed."""
    from ledger.db import LedgerError, make_engine

    elsewhere = tmp_path / "victim" / "secret.db"
    elsewhere.parent.mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "loa.db").symlink_to(elsewhere)
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    with pytest.raises(LedgerError, match="symbolic link"):
        engine.connect()
    engine.dispose()
    assert not elsewhere.exists()
