"""``loa campaign plan``, ``loa recipients check``, ``loa text check``, ``loa suppress``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from campaigns.files import plain_cell
from tests.scripts.test_cli import EXAMPLE, loa

AD = EXAMPLE.parent / "ad-sale.toml"
RESIDENTS = EXAMPLE.parent / "ninh-thuan-residents.csv"


def test_plan_is_a_dry_run_with_rejects_and_costs(tmp_path):
    rejects = tmp_path / "rejects.csv"
    result = loa(
        "campaign",
        "plan",
        str(EXAMPLE),
        "-r",
        str(RESIDENTS),
        "--rejects",
        str(rejects),
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (
        plan["rows_read"]
        == 5200
        == plan["planned"] + plan["rejected"] + plan["duplicates"] + plan["suppressed"]
    )
    assert plan["parts"] == sum(line["parts"] for line in plan["by_provider"])
    assert plan["cost"] == pytest.approx(sum(line["cost"] for line in plan["by_provider"]))
    with rejects.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == plan["rejected"] + plan["duplicates"]
    assert {"row", "value", "reason"} == set(rows[0])
    assert (
        loa("campaign", "status", plan["campaign"], cwd=tmp_path).returncode == 2
    )  # nothing recorded


def test_plan_checks_suppression_lists_from_the_ledger(tmp_path):
    first_number = next(csv.DictReader(RESIDENTS.open(encoding="utf-8")))["Số điện thoại"]
    assert loa("suppress", "add", first_number, "--list", "dnc", cwd=tmp_path).returncode == 0
    result = loa("campaign", "plan", str(AD), "-r", str(RESIDENTS), "--json", cwd=tmp_path)
    plan = json.loads(result.stdout)
    assert plan["suppressed_by_list"] == {"dnc": 1}
    assert plan["khong_dau"] == ["vi"]


def test_recipients_check_writes_a_clean_list_and_rejects(tmp_path):
    clean, rejects = tmp_path / "clean.csv", tmp_path / "rejects.csv"
    result = loa(
        "recipients",
        "check",
        str(RESIDENTS),
        "--out",
        str(clean),
        "--rejects",
        str(rejects),
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    with clean.open(encoding="utf-8") as handle:
        kept = list(csv.DictReader(handle))
    assert len(kept) == summary["valid"] and all(r["Số điện thoại"].startswith("+84") for r in kept)
    assert kept[0]["Họ và tên"]
    assert summary["rows_read"] == summary["valid"] + summary["rejected"] + summary["duplicates"]
    assert (
        sum(1 for _ in rejects.open(encoding="utf-8")) - 1
        == summary["rejected"] + summary["duplicates"]
    )


def test_text_check(tmp_path):
    result = loa("text", "check", "Bộ Y tế đề nghị cài đặt Bluezone", "--json", cwd=tmp_path)
    checked = json.loads(result.stdout)
    assert (checked["encoding"], checked["parts"]) == ("ucs2", 1)
    assert set(checked["forcing_ucs2"]) >= {"ộ", "ế", "đ"}
    assert checked["khong_dau"] == {
        "text": "Bo Y te de nghi cai dat Bluezone",
        "encoding": "gsm7",
        "parts": 1,
    }


def test_suppress_import_add_remove_show(tmp_path):
    listed = tmp_path / "dnc.csv"
    listed.write_text("SĐT\n0912345678\n0912 345 678\nkhông có\n0987654321\n", encoding="utf-8")
    imported = json.loads(
        loa("suppress", "import", str(listed), "--list", "dnc", "--json", cwd=tmp_path).stdout
    )
    assert (imported["added"], imported["duplicates"], imported["rejected"]) == (2, 1, 1)
    again = loa("suppress", "import", str(listed), "--list", "dnc", cwd=tmp_path).stdout
    # For people too, every row is in one of the four: 4 = 0 + 2 + 1 + 1.
    assert (
        "dnc: 4 rows read: 0 numbers added, 2 already listed, 1 repeated in the file, "
        "1 rows unusable"
    ) in " ".join(again.split())
    assert (
        loa("suppress", "add", "+84 912 000 111", "--list", "opt_out", cwd=tmp_path).returncode == 0
    )
    assert loa("suppress", "remove", "0987654321", "--list", "dnc", cwd=tmp_path).returncode == 0
    assert loa("suppress", "remove", "0987654321", "--list", "dnc", cwd=tmp_path).returncode == 1
    assert json.loads(loa("suppress", "show", "--json", cwd=tmp_path).stdout) == {
        "opt_out": 1,
        "dnc": 1,
        "residents": 0,
    }
    bad = loa("suppress", "add", "chưa có", "--list", "dnc", cwd=tmp_path)
    assert bad.returncode == 2 and "not_a_number" in bad.stderr


def _spec(tmp_path: Path, old: str, new: str) -> str:
    path = tmp_path / "campaign.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda t: [_spec(t, 'vi = "Sở', 'vi = "{ward} Sở'), "-r", str(RESIDENTS)], "{ward}"),
        (
            lambda t: [
                _spec(t, 'brandname = "NinhThuan"', 'brandname = "Ninh Thuan Tinh"'),
                "-r",
                str(RESIDENTS),
            ],
            "brandname",
        ),
        (lambda t: [str(EXAMPLE), "-r", str(_file(t, "empty.csv", b""))], "empty file"),
        (
            lambda t: [
                str(EXAMPLE),
                "-r",
                str(_file(t, "fr.csv", "Nom,Téléphone\nRené,0912345678\n".encode("cp1252") * 30)),
            ],
            "--encoding",
        ),
    ],
)
@pytest.mark.parametrize("command", ["plan", "launch"])
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(
    tmp_path, make_args, needle, command
):
    result = loa("campaign", command, *make_args(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    status = loa("campaign", "status", "bluezone-ninh-thuan-2020", cwd=tmp_path)
    assert status.returncode == 2  # no campaign was recorded


def _file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_text_check_names_what_forces_ucs2_and_refuses_an_empty_text(tmp_path):
    result = loa("text", "check", "Cài\u00a0Bluezone “ngay”", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "U+00A0 NO-BREAK SPACE" in result.stdout  # invisible, so named
    assert "U+201C LEFT DOUBLE QUOTATION MARK" in result.stdout
    assert 'Cai Bluezone "ngay"' in result.stdout  # the không-dấu version, plain GSM-7
    empty = loa("text", "check", " ", cwd=tmp_path)
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_a_row_with_more_cells_than_the_header_is_rejected_and_the_others_go_on(tmp_path):
    """One stray cell never blocks a list: that row is rejected as `extra_cells` (in the
    counts and the rejects file, whole), every other row is checked and planned."""
    listing = tmp_path / "list.csv"
    listing.write_text(
        "Họ tên,Số điện thoại\nAn,0912345678\nBình,0987654321,Ninh Hải\nChi,0971234567\n",
        encoding="utf-8",
    )
    for command in (
        ("recipients", "check", str(listing)),
        ("campaign", "plan", str(EXAMPLE), "-r", str(listing)),
    ):
        rejects = tmp_path / f"{command[0]}-rejects.csv"
        result = loa(*command, "--json", "--rejects", str(rejects), cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        counts = json.loads(result.stdout)
        assert counts["rows_read"] == 3 and counts["rejected_by_reason"] == {"extra_cells": 1}
        assert counts.get("valid", counts.get("planned")) == 2
        with rejects.open(encoding="utf-8-sig", newline="") as handle:
            assert list(csv.reader(handle))[1:] == [["3", "0987654321", "extra_cells"]]


def test_the_rejects_file_agrees_with_its_header_for_check_and_plan(tmp_path):
    """`row,value,reason` is what each row holds, in that order: the list's row number,
    its phone cell as read, the reason code (plan once wrote row,reason,value under it)."""
    with RESIDENTS.open(encoding="utf-8", newline="") as handle:
        phone_at = {number: row[2] for number, row in enumerate(csv.reader(handle), start=1)}
    commands = {
        "check": ("recipients", "check", str(RESIDENTS)),
        "plan": ("campaign", "plan", str(EXAMPLE), "-r", str(RESIDENTS)),
    }
    for name, command in commands.items():
        rejects = tmp_path / f"{name}.csv"
        result = loa(*command, "--rejects", str(rejects), cwd=tmp_path)
        assert result.returncode == 0, (name, result.stderr)
        with rejects.open(encoding="utf-8", newline="") as handle:
            header, *rows = list(csv.reader(handle))
        assert header == ["row", "value", "reason"], name
        assert len(rows) > 100, name
        for row, value, reason in rows:
            # The value as read (a leading quote keeps a spreadsheet from running it).
            assert row.isdigit() and plain_cell(value) == phone_at[int(row)], (name, row, value)
            assert re.fullmatch(r"[a-z_]+", reason), (name, row, value, reason)
        assert {"duplicate", "wrong_length", "empty"} <= {reason for *_, reason in rows}, name
