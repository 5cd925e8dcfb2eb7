"""``loa audit export``: what an auditor takes away and checks without trusting Loa, or
its database.

A folder with:

- ``checkpoint.txt``: a checkpoint of the whole log signed at export time
  (``ledger.audit.checkpoints``): its size and Merkle root, and the line ``export N``
  naming the leaf of the export's own event, signed with the ledger's key;
- ``events.jsonl``: the campaign's sealed events in log order up to the export's own
  (leaf ``N``, the last line), one JSON object a line: ``index`` (its leaf in the tree),
  ``event`` (the fields the log covers, ``ledger.chain.event_fields``) and ``proof`` (its
  inclusion proof to the checkpoint's root, hex, RFC 9162 §2.1.3);
- ``consistency.json`` (with ``since``): a checkpoint the auditor held before and the
  proof that the log now extends it (RFC 9162 §2.1.4);
- ``recipients.csv``: each recipient's state (``ledger.recipients_csv``), the number
  masked (``+8491*****78``);
- ``verify_export.py``: the stand-alone checker (Python's standard library, and
  ``cryptography`` or ``openssl`` for the signature);
- ``manifest.json``: the format, campaign, counts and verifier key (for convenience: the
  checker trusts none of it but what it checks).

**Why the recipients hold still.** The export's own event commits to the campaign's
events before it (how many, the SHA-256 of their leaves) and to ``recipients.csv``
(its rows, the SHA-256 of the whole file). The rows are read, and the event written and
sealed, in one transaction that keeps every message row still (PostgreSQL: ``LOCK TABLE
messages IN SHARE MODE``; SQLite: its write lock), after sealing every event committed
before: each row is then exactly where its events before the export's leave it, and the
checker holds each row to that (status, provider, error code, times), not merely to a
status it passed through. Sending waits for the second or two that takes (the log's
older leaves are read before, outside the lock).

The folder is written under a temporary name and renamed when complete, so a failed
export leaves nothing that looks like one; a ``since`` the log does not extend is
refused before anything is written, in the folder or the log. The folder is its owner's
alone (0700, its files 0600: they describe people).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.files import as_text, create_private, private_folder, sweep_partials
from campaigns.status import FINAL
from ledger.audit.actions import record_action
from ledger.audit.checkpoints import Checkpoint, CheckpointError, check, public_of, verifier_key
from ledger.audit.log import leaf_of, make_checkpoint, sealed
from ledger.audit.merkle import Tree
from ledger.chain import event_fields, lock_sealers, seal_in
from ledger.recipients_csv import write_recipients
from ledger.schema import seals

VERIFIER = Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"
#: The export's layout, as the checker knows it.
FORMAT = "loa-audit-export-v3"


class ExportError(ValueError):
    """The export cannot be written where asked (the folder is not empty, not writable),
    or ``since`` is not a checkpoint this log extends."""


class _Leaves:
    """The log's leaves read in order, once, as far as asked; the campaign's events among
    them kept with their index."""

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        self.leaves: list[bytes] = []
        self.mine: list[tuple[int, dict[str, Any]]] = []

    def read(self, conn: Connection, size: int | None = None) -> None:
        for row in sealed(conn, after=len(self.leaves)):
            if size is not None and len(self.leaves) >= size:
                return
            self.leaves.append(leaf_of(row))
            if row.campaign_id == self.campaign_id:
                self.mine.append((len(self.leaves) - 1, event_fields(row)))

    def digest(self) -> str:
        """SHA-256 of the campaign's leaves, in log order: what the export event commits."""
        hashed = hashlib.sha256()
        for index, _ in self.mine:
            hashed.update(self.leaves[index])
        return hashed.hexdigest()


def recipients_digest(data: bytes) -> tuple[int, str]:
    """How many recipients the ``recipients.csv`` bytes ``data`` list, and the SHA-256 of
    the whole file: what the export event commits, and the checker recomputes (any byte
    changed, a row edited, added or dropped, no longer matches)."""
    rows = sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))) - 1
    return max(rows, 0), hashlib.sha256(data).hexdigest()


def export(
    engine: Engine,
    out: Path,
    campaign_id: str,
    origin: str,
    seed: bytes,
    since: Checkpoint | None = None,
) -> dict[str, Any]:
    """Seal what is pending, write the campaign's recipients and an event of the export's
    own committing to them and to the campaign's events, sign a checkpoint of the whole
    log naming that event with ``seed`` under the log's name ``origin``, and write the
    export of ``campaign_id`` to the folder ``out`` (with ``since``, a checkpoint the
    auditor holds, the proof that the log extends it). Returns the manifest.

    Raises:
        ExportError: ``out`` exists and is not empty, cannot be written, or ``since`` is
            not a checkpoint of this log (another key, larger, or not in its tree: it was
            rewritten); nothing is written then.
        CampaignNotFound: no such campaign.
        LogBroken: a sealed event is missing (``loa audit verify`` says more).
    """
    from ledger.summary import load_campaign

    load_campaign(engine, campaign_id)
    key = (origin, public_of(seed))
    if since is not None:
        try:
            check(since, *key)
        except CheckpointError as exc:
            raise ExportError(
                f"--since: {exc}: not a checkpoint this log signed, or altered"
            ) from None
    if out.is_symlink():
        raise ExportError(f"{out}: a symbolic link; Loa writes no export through a link")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: exists and is not an empty folder; choose a new one")
    found = _Leaves(campaign_id)
    with engine.connect() as conn:
        found.read(conn)  # the long part, before anything is held still
    if since is not None:
        _extends(Tree(found.leaves), since)
    sweep_partials(out)  # left by an export killed mid-way: personal data, for nobody
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        private_folder(out.parent)  # missing parents made 0700, existing ones left alone
        os.mkdir(partial, 0o700)  # new: nothing in it but what is written below
    except OSError as exc:
        raise ExportError(f"{out}: cannot write there ({exc.strerror})") from None
    try:
        index, statuses = _commit(engine, partial, found)
        signed = make_checkpoint(engine, origin, seed, (f"export {index}",))
        with engine.connect() as conn:
            found.read(conn, signed.size)
        mine = [(i, fields) for i, fields in found.mine if i <= index]
        log = Tree(found.leaves)
        _write_events(partial / "events.jsonl", log, mine)
        names = ["checkpoint.txt", "events.jsonl", "recipients.csv", "verify_export.py"]
        _write(partial / "checkpoint.txt", signed.text.encode())
        if since is not None:
            proof = {"since": since.text, "proof": [h.hex() for h in log.consistency(since.size)]}
            _write(partial / "consistency.json", (json.dumps(proof, indent=2) + "\n").encode())
            names.append("consistency.json")
        _write(partial / "verify_export.py", VERIFIER.read_bytes())
        manifest = {
            "format": FORMAT,
            "campaign": campaign_id,
            "exported_at": signed.time,
            "checkpoint": {
                "size": signed.size,
                "root": base64_of(signed.root),
                "time": signed.time,
                "export_event": index,
            },
            "verifier_key": verifier_key(*key),
            "events": len(mine),
            "statuses": statuses,
            "complete": all(status in {s.value for s in FINAL} for status in statuses),
            "files": {name: _digest(partial / name) for name in names},
        }
        _write(
            partial / "manifest.json",
            (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode(),
        )
        try:
            if out.exists():
                out.rmdir()  # empty, checked above
            partial.rename(out)
        except OSError as exc:  # made meanwhile, by someone else
            raise ExportError(f"{out}: cannot write there ({exc.strerror})") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _commit(engine: Engine, partial: Path, found: _Leaves) -> tuple[int, dict[str, int]]:
    """In one transaction holding every message row still: seal what is pending, write
    ``recipients.csv``, record the export's own event committing to it and to the
    campaign's events sealed before, and seal that event. Returns its leaf index and the
    recipients per status."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE holds every row
            conn.exec_driver_sql("LOCK TABLE messages IN SHARE MODE")
        lock_sealers(conn, wait=True)
        while seal_in(conn, everywhere=True):
            pass
        found.read(conn)
        statuses = write_recipients(conn, partial / "recipients.csv", found.campaign_id)
        recipients, digest = recipients_digest((partial / "recipients.csv").read_bytes())
        event_id = record_action(
            conn, "export", found.campaign_id, export=uuid.uuid4().hex,
            events=len(found.mine), events_digest=found.digest(),
            recipients=recipients, recipients_digest=digest, statuses=statuses,
        )  # fmt: skip
        while seal_in(conn, everywhere=True):
            pass
        seq = conn.scalar(sa.select(seals.c.seq).where(seals.c.event_id == event_id))
    return int(seq) - 1, statuses


def _extends(log: Tree, since: Checkpoint) -> None:
    """Refuse a ``since`` this log does not extend (larger, or its root not this log's at
    its size: rewritten)."""
    if since.size > log.size:
        raise ExportError(
            f"--since: a checkpoint of {since.size} events; the log has {log.size}: it was cut"
        )
    if log.root(since.size) != since.root:
        raise ExportError(
            f"--since: the log's first {since.size} events no longer hash to that "
            "checkpoint's root: it was rewritten"
        )


def _write_events(path: Path, log: Tree, mine: list[tuple[int, dict[str, Any]]]) -> None:
    """The campaign's events, each with its inclusion proof in ``log``."""
    with create_private(path) as raw, as_text(raw) as out:
        for index, fields in mine:
            proof = [h.hex() for h in log.inclusion(index)]
            entry = {"index": index, "event": fields, "proof": proof}
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def base64_of(root: bytes) -> str:
    """A root as people compare it: base64, as checkpoints write it."""
    import base64

    return base64.b64encode(root).decode()


def _digest(path: Path) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def _write(path: Path, data: bytes) -> None:
    with create_private(path) as handle:
        handle.write(data)
