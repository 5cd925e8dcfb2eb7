"""``loa audit keygen``, ``checkpoint`` and ``verify --checkpoint`` as an operator and an
auditor run them, on the embedded SQLite ledger: a key made, a checkpoint handed over,
the ledger then altered behind the log's back, and bad keys and files refused."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.scripts.demo_run import example_launched, made_once
from tests.scripts.test_cli import loa


def keyed(tmp_path) -> dict[str, str]:
    made = loa("audit", "keygen", "--json", cwd=tmp_path, env={"LOA_AUDIT_LOG_NAME": "loa/nt"})
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["verifier_key"].startswith("loa/nt+")
    return {"LOA_AUDIT_SIGNING_KEY": key["LOA_AUDIT_SIGNING_KEY"], "LOA_AUDIT_LOG_NAME": "loa/nt"}


@pytest.fixture
def env(tmp_path_factory) -> dict[str, str]:
    """The settings of a signing key (``keyed``), made once for the run: the tests below
    are about checkpoints, not about the key, and each of its own cost a command."""

    def make(folder) -> None:
        (folder / "key.json").write_text(json.dumps(keyed(folder)), encoding="utf-8")

    shared = made_once("audit-signing-key", tmp_path_factory, make)
    return json.loads((shared / "key.json").read_text(encoding="utf-8"))


@pytest.fixture
def launched(tmp_path, tmp_path_factory) -> None:
    """The example campaign launched to its end in ``tmp_path`` (a copy of one launch for
    the run: ``example_launched``; a launch does not read the signing key)."""
    example_launched(tmp_path, tmp_path_factory)


def test_a_checkpoint_handed_over_catches_a_status_changed_in_the_table(tmp_path, env, launched):
    signed = loa("audit", "checkpoint", "--out", "cp.txt", "--json", cwd=tmp_path, env=env)
    assert signed.returncode == 0, signed.stderr
    checkpoint = json.loads(signed.stdout)
    assert (tmp_path / "cp.txt").read_text() == checkpoint["checkpoint"]
    assert checkpoint["checkpoint"].startswith(f"loa/nt\n{checkpoint['size']}\n")
    assert (tmp_path / "cp.txt").stat().st_mode & 0o077 == 0

    auditor = {"LOA_AUDIT_LOG_NAME": "loa/nt"}  # no signing key: the verifier key only
    given = ("--checkpoint", "cp.txt", "--key", checkpoint["verifier_key"], "--json")
    holds = loa("audit", "verify", *given, cwd=tmp_path, env=auditor)
    assert holds.returncode == 0, holds.stdout
    assert json.loads(holds.stdout)["signatures_checked"] is True

    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:
        ledger.execute("UPDATE messages SET status = 'expired'")  # whatever they were
    altered = loa("audit", "verify", *given, cwd=tmp_path, env=auditor)
    assert altered.returncode == 1
    problems = json.loads(altered.stdout)["problems"]
    assert problems and all("the row was altered" in p for p in problems)


def test_a_checkpoint_is_written_only_to_a_new_file(tmp_path, env):
    (tmp_path / "cp.txt").write_text("kept\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    for name in ("cp.txt", "link.txt"):
        refused = loa("audit", "checkpoint", "--out", name, cwd=tmp_path, env=env)
        assert refused.returncode == 2 and f"--out {name}: already there" in refused.stderr
    assert (tmp_path / "cp.txt").read_text() == "kept\n"
    assert not (tmp_path / "elsewhere.txt").exists()


def test_without_a_key_a_checkpoint_is_refused_and_verify_says_unsigned(tmp_path):
    refused = loa("audit", "checkpoint", cwd=tmp_path)
    assert refused.returncode == 2 and "LOA_AUDIT_SIGNING_KEY is not set" in refused.stderr
    said = loa("audit", "verify", cwd=tmp_path)
    assert said.returncode == 0 and "chưa ký · unsigned" in said.stdout


def test_a_malformed_signing_key_is_refused_at_start_naming_the_variable(tmp_path):
    for bad in ("not base64!", "AAAA", "A" * 43 + "="):
        refused = loa("audit", "verify", cwd=tmp_path, env={"LOA_AUDIT_SIGNING_KEY": bad})
        assert refused.returncode == 2, bad
        assert "LOA_AUDIT_SIGNING_KEY" in refused.stderr and "Traceback" not in refused.stderr


def test_a_checkpoint_file_that_is_not_one_is_refused_naming_its_line(tmp_path, env):
    assert loa("audit", "checkpoint", "--out", "cp.txt", cwd=tmp_path, env=env).returncode == 0
    lines = (tmp_path / "cp.txt").read_text().split("\n")
    (tmp_path / "bad.txt").write_text("\n".join([lines[0], "twelve", *lines[2:]]))
    refused = loa("audit", "verify", "--checkpoint", "bad.txt", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "bad.txt: line 2: the size is a decimal number, not 'twelve'" in refused.stderr
    wrong_key = loa("audit", "verify", "--key", "nobody+00+AA==", cwd=tmp_path)
    assert wrong_key.returncode == 2 and "--key:" in wrong_key.stderr


def test_a_key_that_signed_none_of_the_checkpoints_is_a_mistake_not_a_verdict(tmp_path, env):
    """Another log name or key (a typo) would name every checkpoint altered and record it
    for the reports to show: it is refused instead (exit 2), naming both keys, and
    nothing is recorded."""
    assert loa("audit", "checkpoint", cwd=tmp_path, env=env).returncode == 0
    other = json.loads(
        loa("audit", "keygen", "--json", cwd=tmp_path, env={"LOA_AUDIT_LOG_NAME": "loa/nt"}).stdout
    )
    typo = {**env, "LOA_AUDIT_LOG_NAME": "loa/n-t"}
    for how in (("--key", other["verifier_key"]), ()):
        refused = loa("audit", "verify", *how, cwd=tmp_path, env=env if how else typo)
        assert refused.returncode == 2, refused.stdout
        assert "signed none of this ledger's checkpoints (they are signed by loa/nt+" in (
            refused.stderr
        )
        assert "Nothing was recorded" in refused.stderr and "Traceback" not in refused.stderr
    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:
        assert ledger.execute("SELECT count(*) FROM verifications").fetchone() == (0,)


def test_the_daily_report_carries_a_checkpoint_the_auditor_can_hold_the_log_to(
    tmp_path, env, launched
):
    import html
    import re

    from ledger.audit import checkpoints as notes

    made = loa("report", "--daily", "today", "--out", "day.html", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    page = (tmp_path / "day.html").read_text(encoding="utf-8")
    (carried,) = re.findall(r"<pre>(.*?)</pre>", page, re.S)
    checkpoint = notes.parse(html.unescape(carried))
    (tmp_path / "held.txt").write_text(checkpoint.text)
    vkey = json.loads(loa("audit", "checkpoint", "--json", cwd=tmp_path, env=env).stdout)
    assert notes.parse_verifier_key(vkey["verifier_key"])[0] == "loa/nt"
    given = ("--checkpoint", "held.txt", "--key", vkey["verifier_key"])
    assert loa("audit", "verify", *given, cwd=tmp_path).returncode == 0

    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:
        ledger.execute("UPDATE messages SET status = 'expired'")
    assert loa("audit", "verify", *given, cwd=tmp_path).returncode == 1  # recorded
    again = loa("report", "--daily", "today", "--out", "day2.html", cwd=tmp_path, env=env)
    assert again.returncode == 0
    shown = html.unescape((tmp_path / "day2.html").read_text(encoding="utf-8"))
    assert "its row says expired" in shown  # what was altered, in the report

    unsigned = loa("report", "--daily", "today", "--out", "day3.html", cwd=tmp_path)
    assert unsigned.returncode == 0
    assert "LOA_AUDIT_SIGNING_KEY" in (tmp_path / "day3.html").read_text(encoding="utf-8")


def test_a_workbook_report_carries_the_checkpoint_and_what_a_verdict_named(tmp_path, env, launched):
    from openpyxl import load_workbook

    from ledger.audit import checkpoints as notes

    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:
        ledger.execute("UPDATE messages SET status = 'expired'")
    made = loa(
        "report", "bluezone-ninh-thuan-2020", "--verify", "--out", "r.xlsx", cwd=tmp_path, env=env
    )
    assert made.returncode == 0, made.stderr
    daily = loa("report", "--daily", "today", "--out", "d.xlsx", cwd=tmp_path, env=env)
    assert daily.returncode == 0, daily.stderr
    for book in ("r.xlsx", "d.xlsx"):  # a campaign's workbook and the day's
        rows = [
            [cell.value for cell in row]
            for sheet in load_workbook(tmp_path / book, read_only=True).worksheets
            for row in sheet.iter_rows()
        ]
        assert any("its row says expired" in str(row[1]) for row in rows if len(row) > 1)
        # The checkpoint a line a row: the column copied is the note as signed.
        start = next(i for i, row in enumerate(rows) if row[0] == "Điểm kiểm tra đã ký")
        lines = [rows[start][1]]
        for row in rows[start + 1 :]:
            if row[0] not in (None, ""):
                break
            lines.append(row[1] or "")
        note = notes.parse("\n".join(lines) + "\n")
        assert note.origin == "loa/nt" and note.signatures[0][0] == "loa/nt"
