"""Damaged lists and campaign files through ``loa`` as operators run it: a clear line
naming the file, row and field and exit 2 (never a traceback) when nothing can be read
safely, and otherwise the damaged row rejected with its reason while the summary still
adds up (rows read = rejected + duplicates + suppressed + recipients)."""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

from tests.scripts.test_cli import EXAMPLE, loa

HEADER = "Họ và tên,Số điện thoại,Huyện\n"


def resident(number: int) -> str:
    return f"Người {number},09120{number:05d},Q{number % 5}\n"


def refused(result, *needles: str) -> str:
    """The one line a refusal prints: exit 2, each needle in it, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    said = result.stderr.strip()
    assert "Traceback" not in said and "╭" not in said, said
    for needle in needles:
        assert needle in said, (needle, said)
    return said


def test_a_quote_never_closed_is_refused_naming_the_row_not_swallowing_the_list(tmp_path):
    rows = [resident(n) for n in range(1000)]
    rows[9] = '"Tí,0912000009,Q4\n'  # row 11 of the file
    listing = tmp_path / "list.csv"
    listing.write_text(HEADER + "".join(rows), encoding="utf-8")
    for command in (
        ("recipients", "check", str(listing)),
        ("campaign", "plan", str(EXAMPLE), "-r", str(listing)),
    ):
        refused(loa(*command, "--json", cwd=tmp_path), f"{listing}: row 11:", "never closed")


def test_a_header_cell_over_128_kb_is_one_line(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("H" * 200_000 + ",Số điện thoại\n" + resident(1), encoding="utf-8")
    said = refused(loa("recipients", "check", str(listing), cwd=tmp_path), f"{listing}: ")
    assert "header" in said.split(f"{listing}: ", 1)[1] and len(said) < 400


def test_utf16_named_for_a_file_without_bom_is_one_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes("Số điện thoại\tTên\n0912345678\tAn\n".encode("utf-16-le"))
    result = loa("recipients", "check", str(listing), "--encoding", "utf-16", cwd=tmp_path)
    said = refused(result, f"{listing}: ")
    assert "utf-16" in said.split(f"{listing}: ", 1)[1]


def damaged_list(folder: Path) -> Path:
    """4,000 UTF-8 rows; row 3,001 holds a byte UTF-8 cannot read, row 3,501 a name over
    csv's 128 KB field limit, row 3,901 repeats row 2's number."""
    lines = [HEADER.encode("utf-8")] + [resident(n).encode("utf-8") for n in range(1, 4001)]
    lines[3000] = b"Ng\xc6\xb0\xe1i 3000,0912003000,Q0\n"
    lines[3500] = ("A" * 200_000 + ",0912003500,Q0\n").encode()
    lines[3900] = "Người 3900,0912 000 001,Q0\n".encode()
    listing = folder / "list.csv"
    listing.write_bytes(b"".join(lines))
    return listing


def test_damaged_rows_are_rejected_and_the_other_rows_go_on(tmp_path):
    listing = damaged_list(tmp_path)
    expected = {"3001": "bad_encoding", "3501": "unreadable_row", "3901": "duplicate"}
    for name, command in {
        "check": ("recipients", "check", str(listing)),
        "plan": ("campaign", "plan", str(EXAMPLE), "-r", str(listing)),
    }.items():
        rejects = tmp_path / f"{name}-rejects.csv"
        result = loa(*command, "--json", "--rejects", str(rejects), cwd=tmp_path)
        assert result.returncode == 0, (name, result.stderr)
        counts = json.loads(result.stdout)
        assert counts["rows_read"] == 4000, name
        assert counts["rejected_by_reason"] == {"bad_encoding": 1, "unreadable_row": 1}, name
        kept = counts.get("valid", counts.get("planned"))
        assert kept == 3997 and counts["duplicates"] == 1, name
        assert counts["rows_read"] == (
            counts["rejected"] + counts["duplicates"] + counts.get("suppressed", 0) + kept
        )
        with rejects.open(encoding="utf-8", newline="") as handle:
            assert {row: reason for row, _, reason in list(csv.reader(handle))[1:]} == expected
    table = loa("recipients", "check", str(listing), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "bad_encoding" not in table.stdout  # a label for people, not the code
    assert "UTF-8" in table.stdout


def test_a_decimal_comma_zero_in_a_semicolon_file_is_a_whole_number(tmp_path):
    listing = tmp_path / "excel.csv"
    listing.write_text(
        "Số điện thoại;Tên\n912345678,0;A\n84912345681,00;B\n912345680,5;C\n", encoding="utf-8"
    )
    clean = tmp_path / "clean.csv"
    result = loa("recipients", "check", str(listing), "--out", str(clean), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["valid"], counts["rejected_by_reason"]) == (2, {"not_a_number": 1})
    with clean.open(encoding="utf-8", newline="") as handle:
        assert [row[0] for row in csv.reader(handle)][1:] == ["+84912345678", "+84912345681"]


def test_a_campaign_file_saved_with_a_bom_is_read(tmp_path):
    spec = tmp_path / "campaign.toml"
    spec.write_bytes(codecs.BOM_UTF8 + EXAMPLE.read_bytes())  # as Windows Notepad saves it
    listing = tmp_path / "list.csv"
    listing.write_text(HEADER + resident(1), encoding="utf-8")
    result = loa("campaign", "plan", str(spec), "-r", str(listing), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["planned"] == 1


def test_suppress_import_finds_a_number_column(tmp_path):
    listed = tmp_path / "dnc.csv"
    listed.write_text("number,note\n0912345678,x\n+84987654321,y\n", encoding="utf-8")
    result = loa("suppress", "import", str(listed), "--list", "dnc", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 2
