"""``loa recipients check --ported``: a ported number counts under the carrier serving it
now, as ``loa campaign plan --ported`` routes it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts.test_cli import EXAMPLE, loa


def _files(tmp_path: Path) -> tuple[Path, Path]:
    recipients = tmp_path / "list.csv"
    recipients.write_text(
        "Họ tên,Số điện thoại\n"
        "An,0912345678\n"  # Vinaphone's prefix, ported to Viettel
        "Bình,0987654321\n"  # Viettel's, listed as Viettel: not moved
        "Chi,0901234567\n",  # MobiFone's, not in the ported list
        encoding="utf-8",
    )
    ported = tmp_path / "ported.csv"
    ported.write_text(
        "number,carrier\n+84 912 345 678,viettel\n0987654321,Viettel\n", encoding="utf-8"
    )
    return recipients, ported


def test_check_counts_ported_numbers_under_their_carrier_now(tmp_path):
    recipients, ported = _files(tmp_path)
    plain = loa("recipients", "check", str(recipients), "--json", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["by_carrier"] == {
        "mobifone": 1,
        "viettel": 1,
        "vinaphone": 1,
    }

    done = loa(
        "recipients", "check", str(recipients), "--ported", str(ported), "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["by_carrier"] == {"mobifone": 1, "viettel": 2}
    assert result["ported"] == 1 and result["valid"] == 3

    # The plan routes the same list the same way.
    plan = loa(
        "campaign",
        "plan",
        str(EXAMPLE),
        "-r",
        str(recipients),
        "--ported",
        str(ported),
        "--json",
        cwd=tmp_path,
    )
    assert plan.returncode == 0, plan.stderr
    by_carrier: dict[str, int] = {}
    for line in json.loads(plan.stdout)["by_provider"]:
        by_carrier[line["carrier"]] = by_carrier.get(line["carrier"], 0) + line["recipients"]
    assert by_carrier == result["by_carrier"]

    table = loa("recipients", "check", str(recipients), "--ported", str(ported), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "Chuyển mạng giữ số · ported" in table.stdout


def test_a_bad_ported_list_is_named_and_exits_2(tmp_path):
    recipients, ported = _files(tmp_path)
    ported.write_text("number,carrier\n0912345678,viettel\n0987654321,vinafone\n", "utf-8")
    done = loa("recipients", "check", str(recipients), "--ported", str(ported), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{ported}: row 3: unknown carrier 'vinafone'" in lines[0]
    missing = loa(
        "recipients", "check", str(recipients), "--ported", str(tmp_path / "none.csv"), cwd=tmp_path
    )
    assert missing.returncode == 2 and "none.csv: cannot read ported-number list" in missing.stderr
