"""An audit export checked as an auditor checks it: by the stand-alone script, in an
isolated Python (``-I``: no site-packages, so nothing of Loa's can help it)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.chain import verify
from ledger.export import ExportError, export
from tests.ledger.test_chain import SPEC, campaign_with_events


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(folder / "verify_export.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def refresh_manifest(folder: Path, name: str) -> None:
    """What a careful forger does after editing a file: fix its sum in the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data = (folder / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_an_export_verifies_alone(engine, tmp_path):
    campaign_with_events(engine)
    folder = tmp_path / "export"
    manifest = export(engine, folder, SPEC.id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "chain.csv", "events.jsonl", "manifest.json", "recipients.csv", "verify_export.py",
    ]  # fmt: skip
    assert manifest["chain_head"]["hash"] == verify(engine).head
    assert manifest["statuses"] == {"queued": 5, "sending": 5} and not manifest["complete"]
    result = check(folder)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("OK: 16 events, 10 recipients")
    numbers = (folder / "recipients.csv").read_text(encoding="utf-8")
    assert "+8491*****00" in numbers and "+84912300000" not in numbers  # masked


def test_the_whole_ledger_exports_with_its_head(engine, tmp_path):
    campaign_with_events(engine)
    manifest = export(engine, tmp_path / "all")
    assert manifest["whole_ledger"] and manifest["events"] == manifest["chain_head"]["seq"]
    assert check(tmp_path / "all").returncode == 0


@pytest.mark.parametrize(
    ("forge", "needle"),
    [
        # A status edited in the recipients file, the manifest left alone.
        (
            lambda f: (f / "recipients.csv").write_text(
                (f / "recipients.csv").read_text().replace("queued", "delivered", 1)
            ),
            "recipients.csv: changed since the export",
        ),
        # An event edited, and the manifest's sum fixed to match.
        (
            lambda f: (
                (f / "events.jsonl").write_text(
                    (f / "events.jsonl")
                    .read_text()
                    .replace('"to_status": "sending"', '"to_status": "sent"', 1)
                ),
                refresh_manifest(f, "events.jsonl"),
            ),
            "does not hash to its link",
        ),
        # An event deleted, the manifest's sum fixed.
        (
            lambda f: (
                (f / "events.jsonl").write_text(
                    "".join(
                        line
                        for n, line in enumerate((f / "events.jsonl").read_text().splitlines(True))
                        if n != 3
                    )
                ),
                refresh_manifest(f, "events.jsonl"),
            ),
            "the event sealed at 4 is missing",
        ),
    ],
)
def test_a_forged_export_is_caught(engine, tmp_path, forge, needle):
    campaign_with_events(engine)
    folder = tmp_path / "export"
    export(engine, folder, SPEC.id)
    forge(folder)
    result = check(folder)
    assert result.returncode == 1 and needle in result.stdout, result.stdout


def test_an_export_never_overwrites_and_leaves_nothing_half_written(engine, tmp_path):
    campaign_with_events(engine)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "notes.txt").write_text("the auditor's own notes")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(engine, folder, SPEC.id)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.postgres
def test_postgresql_copy_writes_the_same_recipients_file_as_python(postgres_url, tmp_path):
    from ledger.db import make_engine
    from ledger.export import write_recipients
    from ledger.migrate import upgrade
    from ledger.schema import messages
    from tests.ledger.test_report import campaign

    engine = make_engine(postgres_url)
    upgrade(engine)
    campaign(engine)  # sent, delivered, undelivered, failed; Vietnamese and foreign numbers
    with engine.begin() as conn:  # a number retention replaced, and a very short one
        first, second = conn.execute(sa.select(messages.c.id).order_by(messages.c.id).limit(2))
        conn.execute(
            messages.update()
            .where(messages.c.id == first[0])
            .values(recipient="h:K5ZDQ2MB7XWGJ4YP")
        )
        conn.execute(messages.update().where(messages.c.id == second[0]).values(recipient="+1234"))
    by_server, by_python = tmp_path / "copy.csv", tmp_path / "python.csv"
    counted = write_recipients(engine, by_server, SPEC.id, bom=True)
    assert write_recipients(engine, by_python, SPEC.id, bom=True, copy=False) == counted
    assert by_server.read_bytes() == by_python.read_bytes()
    text = by_server.read_text(encoding="utf-8-sig")
    assert text.count("\n") == 7 and "h:K5Z***********YP" in text and "*****" in text
    engine.dispose()
