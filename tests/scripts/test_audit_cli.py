"""``loa audit`` as an auditor runs it, on the embedded SQLite ledger."""

from __future__ import annotations

import json
import sqlite3

from tests.scripts.test_cli import EXAMPLE, loa, small_list


def test_verify_seals_checks_and_names_an_edited_event(tmp_path):
    launched = loa(
        "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path
    )
    assert launched.returncode == 0, launched.stderr

    read_only = json.loads(loa("audit", "verify", "--no-seal", "--json", cwd=tmp_path).stdout)
    assert read_only["sealed"] == 0 and read_only["unsealed"] > 0  # nothing written by it

    checked = loa("audit", "verify", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    verdict = json.loads(checked.stdout)
    assert verdict["ok"] and verdict["sealed"] == read_only["unsealed"] and verdict["unsealed"] == 0

    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:  # an intruder edits a receipt
        ledger.execute("UPDATE events SET to_status = 'delivered' WHERE id = 4")
    broken = loa("audit", "verify", "--json", cwd=tmp_path)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["broken"] == {
        "seq": 4,
        "event_id": 4,
        "reason": "event altered",
    }

    human = loa("audit", "verify", cwd=tmp_path)
    assert human.returncode == 1 and "event 4" in human.stdout and "event altered" in human.stdout


def test_export_writes_a_folder_the_auditor_checks_alone(tmp_path):
    import subprocess
    import sys

    assert (
        loa(
            "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)), cwd=tmp_path
        ).returncode
        == 0
    )
    folder = tmp_path / "kiểm toán"  # a Vietnamese folder name, as an auditor might choose
    exported = loa(
        "audit", "export", "--campaign", "bluezone-ninh-thuan-2020", "--out", str(folder), "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    assert manifest["complete"] and sum(manifest["statuses"].values()) == 2
    checked = subprocess.run(
        [sys.executable, "-I", "verify_export.py"], cwd=folder, capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stdout.startswith("OK"), checked.stdout

    again = loa(
        "audit", "export", "-c", "bluezone-ninh-thuan-2020", "-o", str(folder), cwd=tmp_path
    )
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    unknown = loa("audit", "export", "-c", "nope", "-o", str(tmp_path / "x"), cwd=tmp_path)
    assert unknown.returncode == 2 and "no campaign 'nope'" in unknown.stderr
    assert not (tmp_path / "x").exists()


def test_retention_without_a_key_is_refused_naming_the_setting(tmp_path):
    result = loa("retention", "apply", cwd=tmp_path)
    assert result.returncode == 2 and "LOA_RETENTION_KEY" in result.stderr
    done = loa(
        "retention", "apply", "--older-than", "30", "--json",
        cwd=tmp_path, env={"LOA_RETENTION_KEY": "a-long-enough-secret-key"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"replaced": 0, "older_than_days": 30}
