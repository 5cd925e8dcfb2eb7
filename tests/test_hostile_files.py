"""Issue 17, hostile input: the files Loa writes are not a way in.

Run as operators run ``loa``: a recipient list and a campaign file holding formulas, an
arrivals inbox with links planted in it, a link where a report's temporary file used to
be; and every file the main commands make, under the usual umask 022, checked to be its
owner's alone.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from campaigns.files import plain_cell
from campaigns.hours import VIETNAM
from tests.campaigns.test_arrivals import RULES
from tests.scripts.test_arrivals_cli import SETTLE, settled, write_csv
from tests.scripts.test_cli import EXAMPLE, loa

CAMPAIGN = "bluezone-ninh-thuan-2020"
NAME = '=cmd|" /C calc"!A0'
DISTRICT = '=HYPERLINK("http://x","y")'
PHONE = "=1+2"  # not a number: rejected, and echoed in the rejects file
RISKY = tuple("=+-@\t\r")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def hostile_list(folder: Path) -> Path:
    listing = folder / "list.csv"
    with listing.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Họ tên", "Số điện thoại", "Huyện"])
        writer.writerows([["An", "0912345678", DISTRICT], ["Bình", "0987654321", "@SUM(1+1)"],
                          ["Chi", PHONE, "Ninh Hải"]])  # fmt: skip
    return listing


def hostile_spec(folder: Path) -> Path:
    spec = folder / "campaign.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    spec.write_text(re.sub(r'(?m)^name = ".*"$', f"name = '{NAME}'", text), encoding="utf-8")
    return spec


#: A signing key for the commands that sign (an audit export).
KEYED = {"LOA_AUDIT_SIGNING_KEY": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}


def run(*args: str, cwd: Path, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = loa(*args, cwd=cwd, env=env)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result.stdout


#: The day in Vietnam each ``hostile`` folder's campaign was launched and sent on: its
#: daily report's (not "today", which a test run after midnight would no longer be).
LAUNCHED_ON: dict[Path, str] = {}


def vietnam_today() -> str:
    return datetime.now(VIETNAM).date().isoformat()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A campaign launched and sent (the sandbox) from a list and a file with formulas,
    from start to end within one day in Vietnam (launched again, in a fresh folder, if
    midnight passed meanwhile)."""
    for _ in range(2):
        folder = tmp_path_factory.mktemp("hostile")
        launch = ("campaign", "launch", str(hostile_spec(folder)), "-r", str(hostile_list(folder)))
        before = vietnam_today()
        run(*launch, "--rejects", "rejects.csv", cwd=folder)
        if vietnam_today() == before:
            LAUNCHED_ON[folder] = before
            return folder
    raise AssertionError("midnight passed during each of two launches")


def formulas(path: Path) -> list[str]:
    """The worksheets of an XLSX file holding a formula element."""
    with zipfile.ZipFile(path) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        return [n for n in sheets if re.search(rb"<f[ >/]", book.read(n))]


def text_cells(path: Path) -> str:
    with zipfile.ZipFile(path) as book:
        return "".join(
            book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/")
        )


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows:  # no cell a spreadsheet would run, unless wholly a number
        for cell in row:
            assert not cell.startswith(RISKY) or re.fullmatch(r"[+-]?[0-9.]+", cell), cell
    return rows


def test_formulas_in_a_list_are_text_in_every_workbook(hostile):
    run("report", CAMPAIGN, "-o", "r.xlsx", cwd=hostile)
    run("report", "--daily", LAUNCHED_ON[hostile], "-o", "d.xlsx", cwd=hostile)
    for book in ("r.xlsx", "d.xlsx"):
        assert formulas(hostile / book) == [], book
    escaped = DISTRICT.replace('"', "&quot;")
    campaign_book = text_cells(hostile / "r.xlsx")
    assert f"<t>{DISTRICT}</t>" in campaign_book or f"<t>{escaped}</t>" in campaign_book
    assert "<t>@SUM(1+1)</t>" in campaign_book  # shown as written, in an inline string
    daily_book = text_cells(hostile / "d.xlsx")
    assert NAME.replace('"', "&quot;") in daily_book or NAME in daily_book


def test_formulas_in_a_list_are_quoted_in_every_csv(hostile):
    run("report", "--daily", LAUNCHED_ON[hostile], "-f", "csv", "-o", "d.csv", cwd=hostile)
    (row,) = csv_rows(hostile / "d.csv")[1:]
    assert row[1] == "'" + NAME and plain_cell(row[1]) == NAME

    run("report", CAMPAIGN, "-f", "csv", "-o", "r.csv", cwd=hostile)
    recipients = csv_rows(hostile / "r.csv")[1:]
    assert len(recipients) == 2 and all(r[1].startswith("'+849") for r in recipients)

    rejects = csv_rows(hostile / "rejects.csv")
    assert rejects[1][1:] == ["'" + PHONE, "not_a_number"]

    run("recipients", "check", "list.csv", "--out", "clean.csv", "--rejects", "bad.csv",
        cwd=hostile)  # fmt: skip
    clean = csv_rows(hostile / "clean.csv")
    assert [r[2] for r in clean[1:]] == ["'" + DISTRICT, "'@SUM(1+1)"]
    assert [r[0] for r in clean[1:]] == ["+84912345678", "+84987654321"]  # numbers as they are
    assert csv_rows(hostile / "bad.csv")[1][1] == "'" + PHONE
    assert {mode(hostile / n) for n in ("rejects.csv", "clean.csv", "bad.csv")} == {0o600}


def test_arrival_rejects_are_quoted(tmp_path):
    from worker.arrivals.inbox import _move

    dropped = tmp_path / "feed.csv"
    dropped.write_text("event_id,phone,arrived_at,area\n", encoding="utf-8")
    moved = _move(dropped, "done", {"file": "feed.csv"}, [(2, "bad_number", "phone", NAME)])
    rows = csv_rows(tmp_path / "done" / f"{moved.name}.rejects.csv")
    assert rows[1] == ["2", "bad_number", "phone", "'" + NAME]


def test_a_planted_partial_and_a_linked_report_are_not_followed(hostile):
    victim = hostile / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (hostile / ".r.html.partial").symlink_to(victim)  # the name reports were written under
    (hostile / "r.html").symlink_to(victim)
    run("report", CAMPAIGN, "-f", "html", "-o", "r.html", cwd=hostile)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (hostile / "r.html").is_symlink() and mode(hostile / "r.html") == 0o600
    assert (hostile / ".r.html.partial").readlink() == victim  # left as it was

    from ledger.db import make_engine
    from scripts.scheduler import write_daily
    from tests.worker.test_arrivals import runtime_for

    reports = hostile / "daily"
    reports.mkdir()
    day = date.today()  # once: the planted name and the report's must be the same day's
    (reports / f".bao-cao-ngay-{day}.html.partial").symlink_to(victim)
    engine = make_engine(f"sqlite:///{(hostile / 'var' / 'loa.db').as_posix()}")
    try:
        written = write_daily(runtime_for(engine, hostile), day, reports)
    finally:
        engine.dispose()
    assert victim.read_text(encoding="utf-8") == "precious"
    assert "Báo cáo ngày" in written.read_text(encoding="utf-8") and mode(written) == 0o600


def inbox_with_a_ferry(tmp_path: Path) -> Path:
    shutil.copy(RULES, tmp_path / "arrivals.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "ferry.csv", 3)
    settled(inbox / "ferry.csv")
    return inbox


def test_links_in_the_inbox_reach_nothing_outside(tmp_path):
    inbox = inbox_with_a_ferry(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret, victim = outside / "secret.csv", outside / "victim.txt"
    secret.write_text("event_id,phone,arrived_at,area\ns-1,SECRET-VALUE,2020,586\n", "utf-8")
    settled(secret)  # old enough to be taken, were the link followed
    victim.write_text("precious", encoding="utf-8")
    (inbox / "evil.csv").symlink_to(secret)
    done = inbox / "done"
    done.mkdir()
    (done / "ferry.csv").symlink_to(victim)
    (done / "ferry.csv.receipt.json").symlink_to(victim)
    (done / "ferry.csv.rejects.csv").symlink_to(outside / "made-through-a-link.csv")

    out = run("arrivals", "ingest", "inbox", "--settle", SETTLE, "--json", cwd=tmp_path, code=1)
    files = {f["file"]: f for f in json.loads(out)["files"]}
    assert "symbolic link" in files["evil.csv"]["problem"] and "read" not in files["evil.csv"]
    assert files["ferry.csv"]["welcomed"] == 3
    moved = tmp_path / files["ferry.csv"]["moved_to"]
    assert moved.parent == done and moved.name.startswith("ferry-") and moved.is_file()
    assert (done / f"{moved.name}.receipt.json").is_file()
    assert (done / f"{moved.name}.rejects.csv").is_file()

    assert victim.read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv", "victim.txt"]
    assert (inbox / "evil.csv").is_symlink() and (done / "ferry.csv").readlink() == victim
    written = [p for p in done.iterdir() if not p.is_symlink()]
    assert not any("SECRET" in p.read_text(encoding="utf-8-sig") for p in written)


def test_a_linked_done_folder_is_refused(tmp_path):
    inbox = inbox_with_a_ferry(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (inbox / "done").symlink_to(elsewhere, target_is_directory=True)
    for target in ("inbox", "inbox/ferry.csv"):
        result = loa("arrivals", "ingest", target, "--settle", SETTLE, cwd=tmp_path)
        assert result.returncode == 2 and "inbox/done: a symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == [] and (inbox / "ferry.csv").is_file()


def test_what_loa_makes_under_umask_022_is_its_owners_alone(tmp_path):
    previous = os.umask(0o022)
    try:
        spec, listing = hostile_spec(tmp_path), hostile_list(tmp_path)
        run("campaign", "launch", str(spec), "-r", str(listing), "--rejects", "rejects.csv",
            cwd=tmp_path)  # fmt: skip
        (tmp_path / "reports").mkdir()  # the operator's folder
        for fmt in ("xlsx", "html", "csv"):
            run("report", CAMPAIGN, "-f", fmt, "-o", f"reports/r.{fmt}", cwd=tmp_path)
        run("report", "--daily", "today", "-f", "csv", "-o", "reports/d.csv", cwd=tmp_path)
        run("audit", "export", "-c", CAMPAIGN, "-o", "exports/audit", cwd=tmp_path, env=KEYED)
        run("recipients", "check", "list.csv", "--out", "clean.csv", "--rejects", "bad.csv",
            cwd=tmp_path)  # fmt: skip
        inbox_with_a_ferry(tmp_path)
        run("arrivals", "ingest", "inbox", "--settle", SETTLE, cwd=tmp_path, code=1)
    finally:
        os.umask(previous)

    made: dict[str, int] = {}
    for top in ("var", "exports", "inbox/done"):  # folders Loa made, and all in them
        root = tmp_path / top
        made[top] = mode(root)
        for folder, folders, files in os.walk(root):
            for name in folders + files:
                made[os.path.relpath(Path(folder, name), tmp_path)] = mode(Path(folder, name))
    made.update({str(p.relative_to(tmp_path)): mode(p) for p in (tmp_path / "reports").iterdir()})
    for name in ("rejects.csv", "clean.csv", "bad.csv"):
        made[name] = mode(tmp_path / name)
    # The feed's own file, moved into done/: made its owner's alone too (it holds numbers).
    assert {"var/loa.db", "inbox/done/ferry.csv", "inbox/done/ferry.csv.receipt.json", "exports/audit/recipients.csv",
            "reports/r.xlsx", "reports/d.csv"} <= set(made)  # fmt: skip
    wrong = {
        name: oct(m)
        for name, m in made.items()
        if m != (0o700 if (tmp_path / name).is_dir() else 0o600)
    }
    assert wrong == {}
