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
    sealed = json.loads(loa("audit", "verify", "--no-seal", "--json", cwd=tmp_path).stdout)
    assert sealed["ok"] and sealed["sealed"] > 0 and sealed["unsealed"] == 0  # as it ended
    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:  # as if killed before sealing
        ledger.execute("DELETE FROM seals")

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

    from tests.scripts.test_audit_checkpoint_cli import keyed

    env = keyed(tmp_path)
    launch = ("campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)))
    assert loa(*launch, cwd=tmp_path, env=env).returncode == 0
    folder = tmp_path / "kiểm toán"  # a Vietnamese folder name, as an auditor might choose
    exported = loa(
        "audit", "export", "--campaign", "bluezone-ninh-thuan-2020", "--out", str(folder), "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    assert manifest["complete"] and sum(manifest["statuses"].values()) == 2
    checked = subprocess.run(
        [sys.executable, "-I", "-S", "verify_export.py", "--key", manifest["verifier_key"]],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.startswith("OK"), checked.stdout

    again = loa(
        "audit", "export", "-c", "bluezone-ninh-thuan-2020", "-o", str(folder), cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    unknown = loa("audit", "export", "-c", "nope", "-o", str(tmp_path / "x"), cwd=tmp_path, env=env)
    assert unknown.returncode == 2 and "no campaign 'nope'" in unknown.stderr
    assert not (tmp_path / "x").exists()
    unsigned = loa("audit", "export", "-c", "bluezone-ninh-thuan-2020", "-o", "y", cwd=tmp_path)
    assert unsigned.returncode == 2 and "LOA_AUDIT_SIGNING_KEY is not set" in unsigned.stderr


def test_retention_without_a_key_is_refused_naming_the_setting(tmp_path):
    result = loa("retention", "apply", cwd=tmp_path)
    assert result.returncode == 2 and "LOA_RETENTION_KEY" in result.stderr
    done = loa(
        "retention", "apply", "--older-than", "30", "--json",
        cwd=tmp_path, env={"LOA_RETENTION_KEY": "a-long-enough-secret-key"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "replaced": 0, "numbers": 0, "fields": 0, "receipts": 0, "arrival_events": 0,
        "visitors": 0, "inbound": 0, "files": {"removed": 0, "kept": 0, "skipped": []}, "older_than_days": 30,
    }  # fmt: skip
    short = loa("retention", "apply", cwd=tmp_path, env={"LOA_RETENTION_KEY": "too-short"})
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    nowhere = loa(
        "retention", "apply", "--inbox", str(tmp_path / "nowhere"),
        cwd=tmp_path, env={"LOA_RETENTION_KEY": "a-long-enough-secret-key"},
    )  # fmt: skip
    assert nowhere.returncode == 2 and "not a folder" in nowhere.stderr


def test_retention_leaves_no_number_and_no_name_past_the_period(tmp_path, ledger_url):
    """A list with a name and a second number, an arrivals inbox, time passing: after
    `loa retention apply --inbox`, no number and no name is left in any table, the
    processed arrival files are gone, and reports and the audit chain still work."""
    import os
    import shutil
    import time
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from ledger.db import make_engine
    from ledger.schema import arrival_events, campaigns, messages, now, receipts, visitors
    from tests.campaigns.test_arrivals import RULES
    from tests.helpers import backdate
    from tests.ledger.test_retention import texts

    env = {"LOA_DATABASE_URL": ledger_url, "LOA_RETENTION_KEY": "khoá-bí-mật-của-sở-tttt"}
    assert loa("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    listing = tmp_path / "list.csv"
    listing.write_text(
        "Họ và tên,Số điện thoại,Số điện thoại người thân,Huyện\n"
        "Nguyễn Văn Ẩn,0912345671,0987111001,Ninh Hải\n"
        "Trần Thị Bí,0912345672,0987111002,Bác Ái\n"
        "Lê Mật,0912345673,0987111003,Ninh Hải\n",
        encoding="utf-8",
    )
    launched = loa("campaign", "launch", str(EXAMPLE), "-r", str(listing), cwd=tmp_path, env=env)
    assert launched.returncode == 0, launched.stderr
    shutil.copy(RULES, tmp_path / "arrivals.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    (inbox / "ferry.csv").write_text(
        "event_id,phone,arrived_at,area\n"
        f"VT-821055500001,+821055500001,{at},586\nVT-bad,+821055500002,{at},999\n",
        encoding="utf-8",
    )
    os.utime(inbox / "ferry.csv", (time.time() - 3600,) * 2)
    ingested = loa(
        "arrivals", "ingest", "inbox", "--rules", "arrivals.toml", "--settle", "60", "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert ingested.returncode == 1, ingested.stderr  # one row refused: rejects beside it
    assert len(list((inbox / "done").iterdir())) == 3

    engine = make_engine(ledger_url)
    try:
        secrets = ["912345671", "987111001", "Nguyễn Văn Ẩn", "Trần Thị Bí", "821055500001"]
        assert all(s in texts(engine) for s in secrets)
        with engine.begin() as conn:  # 100 days pass: every message ends, nothing is recent
            ago = now() - timedelta(days=100)
            conn.execute(sa.update(campaigns).values(valid_until=ago))
            conn.execute(sa.update(messages).values(valid_until=ago))
        backdate(engine, timedelta(days=100))  # what was sent, sent 100 days ago
        assert loa("finalise", cwd=tmp_path, env=env).returncode == 0  # queued: expired
        backdate(engine, timedelta(days=100))  # and ended then
        with engine.begin() as conn:
            conn.execute(sa.update(receipts).values(received_at=now() - timedelta(days=100)))
            conn.execute(sa.update(visitors).values(welcomed_at=ago))
            conn.execute(sa.update(arrival_events).values(received_at=ago))
        for path in (inbox / "done").iterdir():
            os.utime(path, (time.time() - 100 * 86400,) * 2)

        applied = loa(
            "retention", "apply", "--inbox", str(inbox), "--json", cwd=tmp_path, env=env
        )  # no LOA_ARRIVALS_RULES: visitors go after the retention period
        assert applied.returncode == 0, applied.stderr
        done = json.loads(applied.stdout)
        assert done["numbers"] == 4 and done["fields"] == 3 and done["visitors"] == 1
        assert done["arrival_events"] == 1 and done["files"]["removed"] == 3
        ledger = texts(engine)
        for secret in [*secrets, "912345672", "912345673", "987111002", "987111003", "Lê Mật"]:
            assert secret not in ledger, secret
        with engine.connect() as conn:
            left = conn.scalar(
                sa.select(sa.func.count()).where(~messages.c.recipient.startswith("h:"))
            )
        assert left == 0
    finally:
        engine.dispose()
    assert list((inbox / "done").iterdir()) == []

    report = loa(
        "report", "bluezone-ninh-thuan-2020", "-o", str(tmp_path / "r.csv"), "-f", "csv", "--json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    figures = json.loads(report.stdout)
    assert figures["by"] == "Huyện" and figures["recipients"] == 3
    assert sum(sum(by.values()) for by in figures["by_column"].values()) == 3
    assert set(figures["by_column"]) == {"Ninh Hải", "Bác Ái"}  # the district is kept
    verified = loa("audit", "verify", "--json", cwd=tmp_path, env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"]
