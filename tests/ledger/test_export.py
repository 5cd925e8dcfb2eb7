"""An audit export checked as an auditor checks it: by the stand-alone script, in an
isolated Python (``-I``: no site-packages, so nothing of Loa's can help it)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.audit import checkpoints as notes
from ledger.audit.checkpoints import public_of, verifier_key
from ledger.audit.export import ExportError, export
from ledger.audit.log import make_checkpoint
from ledger.audit.verify import verify_log
from ledger.chain import seal_all
from tests.ledger.test_audit_tamper import campaign_with_events_again
from tests.ledger.test_chain import SPEC, campaign_with_events

SEED = bytes(range(1, 33))
ORIGIN = "loa/ninh-thuan"
VKEY = verifier_key(ORIGIN, public_of(SEED))


def check(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """The checker as an auditor runs it: an isolated Python (``-I -S``: no site-packages,
    so nothing of Loa's, nor the cryptography package: the signature goes to openssl),
    with the verifier key they were given."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(folder / "verify_export.py"), "--key", VKEY, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def exported(engine, tmp_path, since=None) -> Path:
    campaign_with_events(engine)
    folder = tmp_path / "export"
    export(engine, folder, SPEC.id, ORIGIN, SEED, since)
    return folder


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def rewrite(folder: Path, entries: list[dict]) -> None:
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    (folder / "events.jsonl").write_text(text, encoding="utf-8")


def test_an_export_verifies_alone_and_prints_its_checkpoint(engine, tmp_path):
    folder = exported(engine, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.txt", "events.jsonl", "manifest.json", "recipients.csv", "verify_export.py",
    ]  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["statuses"] == {"queued": 5, "sending": 5} and not manifest["complete"]
    assert manifest["checkpoint"]["size"] == 17 and verify_log(engine).ok  # and the export's event
    result = check(folder)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("OK · HỢP LỆ: 16 events of bluezone-ninh-thuan-2020, each in")
    signed = notes.parse((folder / "checkpoint.txt").read_text())
    assert signed.extensions[-1] == "export 16"  # the export's own event, its last leaf
    assert f"\n  name {ORIGIN}\n  size 17 (every event" in result.stdout
    assert f"\n  root {manifest['checkpoint']['root']}\n" in result.stdout  # base64
    assert "(queued 5, sending 5)" in result.stdout
    assert "signed by the key you gave" in result.stdout
    assert f"{signed.time} (" in result.stdout and " giờ Việt Nam)" in result.stdout
    numbers = (folder / "recipients.csv").read_text(encoding="utf-8")
    assert "+8491*****00" in numbers and "+84912300000" not in numbers  # masked


def test_the_checker_uses_cryptography_when_it_is_there(engine, tmp_path):
    folder = exported(engine, tmp_path)
    with_packages = subprocess.run(
        [sys.executable, str(folder / "verify_export.py"), "--key", VKEY],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert with_packages.returncode == 0, with_packages.stdout


def test_without_cryptography_or_openssl_it_says_it_could_not_check(engine, tmp_path):
    folder = exported(engine, tmp_path)
    result = check(folder, env={"PATH": str(tmp_path / "nothing")})
    assert result.returncode == 2
    assert result.stdout.startswith("NOT VERIFIED · CHƯA KIỂM ĐƯỢC: cannot check the signature")


def drop_line(n: int):
    def forge(folder: Path) -> None:
        rewrite(folder, [e for i, e in enumerate(lines(folder)) if i != n])

    return forge


def edit_event(n: int, **changes):
    def forge(folder: Path) -> None:
        entries = lines(folder)
        entries[n]["event"].update(changes)
        rewrite(folder, entries)

    return forge


def edit_recipients(old: str, new: str):
    def forge(folder: Path) -> None:
        text = (folder / "recipients.csv").read_text()
        (folder / "recipients.csv").write_text(text.replace(old, new, 1))

    return forge


def relabel(folder: Path) -> None:
    """An event moved to another campaign, its proof kept."""
    entries = lines(folder)
    entries[4]["event"]["campaign_id"] = "another-campaign"
    rewrite(folder, entries)


def resign(folder: Path) -> None:
    """Everything re-made and signed with a key of the forger's own."""
    forged = notes.sign(
        ORIGIN, 16, bytes(32), datetime(2026, 12, 1, tzinfo=UTC), bytes(range(50, 82))
    )
    (folder / "checkpoint.txt").write_text(forged.text)


@pytest.mark.parametrize(
    ("forge", "needle"),
    [
        (edit_event(3, to_status="delivered"), "not in the log: altered or made up"),
        # Message 1's claim (queued -> sending), then its release (sending -> queued).
        (drop_line(1), "15 events before the export's own, not those it committed to (16)"),
        (drop_line(11), "15 events before the export's own, not those it committed to (16)"),
        (drop_line(16), "ends before the export's own event (leaf 16"),  # the export's own
        (edit_recipients(",queued,", ",delivered,"), "not the file the export's event committed"),
        (edit_recipients("\n", "\r\n"), "not the file the export's event committed to"),
        (relabel, "events.jsonl line 5 (event 5): not in the log"),
        (resign, "not by the key you gave"),
    ],
    ids=["event edited", "event dropped", "last event dropped", "export event dropped",
         "row edited", "line ends changed", "relabelled", "re-signed"],
)  # fmt: skip
def test_a_forged_export_is_caught(engine, tmp_path, forge, needle):
    folder = exported(engine, tmp_path)
    forge(folder)
    result = check(folder)
    assert result.returncode == 1 and needle in result.stdout, result.stdout


def test_an_event_made_up_in_the_database_before_the_export_is_named(engine, tmp_path):
    """The administrator inserts a receipt no rule allows (a queued message 'delivered')
    and sets the row to match before exporting: sealed and committed like the rest, and
    named by the checker."""
    from tests.ledger.test_audit_tamper import tamper

    campaign_with_events(engine)
    tamper(
        engine,
        "INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status) "
        f"VALUES ('{SPEC.id}', 1, '2026-12-01 00:00:00', 'receipt', 'queued', 'delivered')",
    )
    tamper(engine, "UPDATE messages SET status = 'delivered' WHERE id = 1")
    folder = tmp_path / "export"
    export(engine, folder, SPEC.id, ORIGIN, SEED)
    result = check(folder)
    assert result.returncode == 1
    assert "message 1 moves from queued to delivered, which no rule allows" in result.stdout


def test_a_recipients_file_cut_short_is_not_the_one_committed_to(engine, tmp_path):
    folder = exported(engine, tmp_path)
    rows = (folder / "recipients.csv").read_text().splitlines(True)
    (folder / "recipients.csv").write_text("".join(rows[:1] + rows[2:]))
    result = check(folder)
    assert result.returncode == 1
    assert "recipients.csv: not the file the export's event committed to" in result.stdout


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        # Rows added behind the log: sealed into the export as they are, and counted.
        (
            "INSERT INTO messages (campaign_key, list_row, recipient, country, language, "
            "encoding, parts, batch, status, provider, attempts) SELECT campaign_key, 99, "
            "'+84912999999', country, language, encoding, parts, batch, 'queued', provider, 0 "
            "FROM messages LIMIT 1",
            "recipients.csv: 11 recipients, but the campaign's launch and arrivals made 10",
        ),
        ("UPDATE messages SET status = 'queued' WHERE id = 7", "shows queued, its events leave it sending"),
        ("UPDATE messages SET error_code = 'invalid_number' WHERE id = 1", "message 1's error_code is invalid_number, its events say tạm dừng"),
        ("UPDATE messages SET provider = 'elsewhere' WHERE id = 7", "message 7's provider is elsewhere, its events say sandbox"),
        ("UPDATE messages SET final_at = sent_at WHERE id = 1", ""),
    ],
    ids=["row added", "status", "error code", "provider", "untouched times"],
)  # fmt: skip
def test_rows_altered_in_the_database_before_the_export_are_named_by_the_checker(
    engine, tmp_path, sql, needle
):
    """The administrator edits rows, then exports: the file is what the export's event
    committed to, and each row is held to where its events leave it."""
    from tests.ledger.test_audit_tamper import tamper

    campaign_with_events(engine)
    tamper(engine, sql)
    folder = tmp_path / "export"
    export(engine, folder, SPEC.id, ORIGIN, SEED)
    result = check(folder)
    if not needle:  # both NULL: nothing changed, and nothing is named
        assert result.returncode == 0, result.stdout
        return
    assert result.returncode == 1 and needle in result.stdout, result.stdout


def test_a_campaign_exported_again_verifies_and_its_earlier_export_cannot_stand_in(
    engine, tmp_path
):
    """A second export of a campaign verifies (the checkpoint names its own event, not
    the first export's); and the second cut back to the first export's event, with the
    first's recipients, is caught: the events after it were left out."""
    from ledger.messages import cancel_campaign

    first = exported(engine, tmp_path)
    cancel_campaign(engine, SPEC.id)
    second = tmp_path / "again"
    export(engine, second, SPEC.id, ORIGIN, SEED)
    result = check(second)
    assert result.returncode == 0, result.stdout
    assert "cancelled 5" in result.stdout
    first_export = len(lines(first)) - 1
    rewrite(second, lines(second)[: first_export + 1])
    (second / "recipients.csv").write_bytes((first / "recipients.csv").read_bytes())
    cut = check(second)
    assert cut.returncode == 1, cut.stdout
    assert "ends before the export's own event" in cut.stdout


def test_a_checkpoint_held_before_is_proved_a_prefix_of_the_log(engine, tmp_path):
    campaign_with_events(engine)
    seal_all(engine)
    held = make_checkpoint(engine, ORIGIN, SEED)
    (tmp_path / "held.txt").write_text(held.text)
    campaign_with_events_again(engine)
    folder = tmp_path / "export"
    export(engine, folder, SPEC.id, ORIGIN, SEED, held)
    result = check(folder, "--since", str(tmp_path / "held.txt"))
    assert result.returncode == 0, result.stdout
    assert "the log extends your checkpoint of 16 events" in result.stdout
    proof = json.loads((folder / "consistency.json").read_text())
    proof["proof"][0] = "00" * 32
    (folder / "consistency.json").write_text(json.dumps(proof))
    broken = check(folder, "--since", str(tmp_path / "held.txt"))
    assert broken.returncode == 1 and "consistency proof" in broken.stdout, broken.stdout


def test_an_export_since_a_checkpoint_the_log_no_longer_extends_is_refused(engine, tmp_path):
    campaign_with_events(engine)
    seal_all(engine)
    held = make_checkpoint(engine, ORIGIN, SEED)
    forged = notes.sign(ORIGIN, held.size, bytes(32), datetime(2026, 12, 1, tzinfo=UTC), SEED)
    with pytest.raises(ExportError, match="no longer hash to that checkpoint's root"):
        export(engine, tmp_path / "x", SPEC.id, ORIGIN, SEED, forged)
    larger = notes.sign(ORIGIN, held.size + 5, held.root, datetime(2026, 12, 1, tzinfo=UTC), SEED)
    with pytest.raises(ExportError, match="it was cut"):
        export(engine, tmp_path / "y", SPEC.id, ORIGIN, SEED, larger)
    elsewhere = notes.sign(
        ORIGIN, held.size, held.root, datetime(2026, 12, 1, tzinfo=UTC), bytes(range(60, 92))
    )
    with pytest.raises(ExportError, match="not a checkpoint this log signed, or altered"):
        export(engine, tmp_path / "z", SPEC.id, ORIGIN, SEED, elsewhere)
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z"))
    with engine.connect() as conn:  # nor in the log: no export event, no checkpoint
        assert conn.scalar(sa.text("SELECT count(*) FROM checkpoints")) == 1
        assert not conn.scalar(sa.text("SELECT count(*) FROM events WHERE source = 'operator'"))


def test_a_checkpoint_other_than_the_one_exported_from_is_not_verified_rather_than_broken(
    engine, tmp_path
):
    """An auditor holding another checkpoint than the one the export proves from has a
    mismatch to sort out with the carrier, not proof of tampering: exit 2, both named."""
    campaign_with_events(engine)
    seal_all(engine)
    held = make_checkpoint(engine, ORIGIN, SEED)
    (tmp_path / "held.txt").write_text(held.text)
    campaign_with_events_again(engine)
    seal_all(engine)
    other = make_checkpoint(engine, ORIGIN, SEED)
    (tmp_path / "other.txt").write_text(other.text)
    plain, proved = tmp_path / "plain", tmp_path / "proved"
    export(engine, plain, SPEC.id, ORIGIN, SEED)
    export(engine, proved, SPEC.id, ORIGIN, SEED, held)
    result = check(plain, "--since", str(tmp_path / "held.txt"))
    assert result.returncode == 2 and "carries no consistency.json" in result.stdout
    result = check(proved, "--since", str(tmp_path / "other.txt"))
    assert result.returncode == 2, result.stdout
    assert f"extends a checkpoint of {held.size} events" in result.stdout
    assert f"not yours of {other.size}" in result.stdout


def test_an_export_never_overwrites_and_leaves_nothing_half_written(engine, tmp_path):
    campaign_with_events(engine)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "notes.txt").write_text("the auditor's own notes")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(engine, folder, SPEC.id, ORIGIN, SEED)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.postgres
def test_postgresql_copy_writes_the_same_recipients_file_as_python(postgres_url, tmp_path):
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from ledger.recipients_csv import write_recipients
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
