"""``campaigns.files``: cells that cannot run, files that cannot be reached through a link."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from campaigns.files import (
    UnsafePath,
    atomic_private,
    create_private,
    csv_cell,
    open_regular,
    plain_cell,
    private_folder,
    real_folder,
    xlsx_append,
)

HOSTILE = ['=HYPERLINK("http://x","y")', '=cmd|" /C calc"!A0', "@SUM(1+1)", "+1+2", "-2+3",
           "\t=1", "\r=1", "-", "+", "=", "'", "'=1", "''", "+8491*****78"]  # fmt: skip
NUMBERS = ["+84901234567", "-5", "3.5", "+.5", "-0.", "12"]
HARMLESS = ["Ninh Hải", "", "0912345678", "h:K5ZDQ2MB7XWGJ4YP", " =1", "a=b", "٣"]


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_that_would_start_a_formula_is_quoted_and_given_back_exactly(value):
    written = csv_cell(value)
    assert written == "'" + value
    assert plain_cell(written) == value


@pytest.mark.parametrize("value", NUMBERS + HARMLESS + [5, -5, 3.5, None])
def test_numbers_and_text_that_cannot_run_are_left_alone(value):
    assert csv_cell(value) == value
    if isinstance(value, str):
        assert plain_cell(csv_cell(value)) == value


def test_no_cell_written_begins_with_a_formula_character_unless_wholly_a_number():
    for value in HOSTILE + NUMBERS + HARMLESS:
        written = csv_cell(value)
        assert written[:1] not in set("=+-@\t\r") or re.fullmatch(r"[+-]?[0-9.]+", written)


def formulas(data: bytes) -> list[str]:
    """The worksheets of an XLSX file that hold a formula element."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return [
            name
            for name in book.namelist()
            if name.startswith("xl/worksheets/") and re.search(rb"<f[ >/]", book.read(name))
        ]


def test_every_string_of_a_workbook_is_text_never_a_formula():
    def workbook(append) -> bytes:
        book = Workbook(write_only=True)
        sheet = book.create_sheet("x")
        for value in [*HOSTILE, "#N/A"]:  # openpyxl would also make "#N/A" an error cell
            append(sheet, [value, 1, "plain", 2.5])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    assert formulas(workbook(lambda sheet, row: sheet.append(row)))  # openpyxl's default
    data = workbook(xlsx_append)
    assert formulas(data) == []
    rows = list(load_workbook(io.BytesIO(data), read_only=True)["x"].iter_rows(values_only=True))
    # (XML reads a carriage return as a line feed: a property of XML, not of the cell's type)
    assert [row[0] for row in rows] == [v.replace("\r", "\n") for v in [*HOSTILE, "#N/A"]]
    assert rows[0][1:] == (1, "plain", 2.5)  # numbers stay numbers


def test_create_private_never_follows_nor_overwrites(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("link", "dangling", "victim.txt"):
        with pytest.raises(FileExistsError):
            create_private(tmp_path / name)
    assert victim.read_text() == "precious" and not (tmp_path / "nowhere").exists()
    previous = os.umask(0o022)
    try:
        with create_private(tmp_path / "new") as out:
            out.write(b"data")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "new") == 0o600 and (tmp_path / "new").read_bytes() == b"data"


def test_atomic_private_replaces_a_planted_link_and_leaves_nothing_on_error(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "report.html"
    target.symlink_to(victim)
    (tmp_path / ".report.html.partial").symlink_to(victim)  # the old predictable name
    with atomic_private(target) as out:
        out.write(b"<html>")
    assert victim.read_text() == "precious"
    assert not target.is_symlink() and target.read_bytes() == b"<html>"
    assert mode(target) == 0o600

    with pytest.raises(RuntimeError), atomic_private(target) as out:
        out.write(b"half")
        raise RuntimeError("the ledger went away")
    assert target.read_bytes() == b"<html>"  # as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".report.html.partial", "report.html", "victim.txt",
    ]  # fmt: skip


def test_open_regular_reads_no_link_and_no_folder(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("SECRET")
    (tmp_path / "link.csv").symlink_to(secret)
    with pytest.raises(UnsafePath, match="symbolic link"):
        open_regular(tmp_path / "link.csv")
    with pytest.raises(UnsafePath, match="not a regular file"):
        open_regular(tmp_path)
    with open_regular(secret) as handle:
        assert handle.read() == b"SECRET"


def test_folders_made_private_and_links_refused(tmp_path):
    previous = os.umask(0o022)
    try:
        made = private_folder(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(previous)
    assert made.is_dir()
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    (tmp_path / "mine").mkdir(mode=0o755)
    private_folder(tmp_path / "mine")
    assert mode(tmp_path / "mine") == 0o755  # its owner's choice, left alone

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "done").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePath, match="done: a symbolic link"):
        real_folder(tmp_path / "done")
    assert real_folder(tmp_path / "failed").is_dir() and mode(tmp_path / "failed") == 0o700


def test_control_characters_xml_cannot_hold_do_not_stop_a_workbook():
    """A list cell with a vertical tab once made every XLSX report of its campaign fail."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("s")
    xlsx_append(sheet, ["x\x0bz", "=ctrl\x01char", "plain"])
    buffer = io.BytesIO()
    book.save(buffer)
    values = [c.value for c in next(load_workbook(buffer).active.iter_rows())]
    assert values == ["x\ufffdz", "=ctrl\ufffdchar", "plain"]


def test_what_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    """kill -9 mid-write once left ``.clean.csv.XXXX.partial`` (whole numbers) for good."""
    target = tmp_path / "clean[1].csv"  # a name glob would misread
    stale_file = tmp_path / ".clean[1].csv.ab12cd.partial"
    stale_folder = tmp_path / ".clean[1].csv.partial-1234abcd"
    fresh = tmp_path / ".clean[1].csv.ef34gh.partial"  # a writer at work right now
    elsewhere = tmp_path / "kept.txt"
    link = tmp_path / ".clean[1].csv.ij56kl.partial"
    stale_file.write_bytes(b"0912345678\n")
    stale_folder.mkdir()
    (stale_folder / "recipients.csv").write_text("x")
    fresh.write_bytes(b"")
    elsewhere.write_text("not Loa's")
    link.symlink_to(elsewhere)
    hour_ago = os.path.getmtime(fresh) - 3600
    for path in (stale_file, stale_folder):
        os.utime(path, (hour_ago, hour_ago))
    os.utime(link, (hour_ago, hour_ago), follow_symlinks=False)
    with atomic_private(target) as handle:
        handle.write(b"ok\n")
    assert not stale_file.exists() and not stale_folder.exists()
    assert fresh.exists() and link.is_symlink() and elsewhere.read_text() == "not Loa's"
    assert target.read_bytes() == b"ok\n"
