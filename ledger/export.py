"""``loa audit export``: what an auditor takes away and checks without trusting Loa, or
its database.

A folder with:

- ``checkpoint.txt``: a checkpoint of the whole log signed at export time
  (``ledger.audit.checkpoints``): its size and Merkle root, signed with the ledger's key;
- ``events.jsonl``: the campaign's sealed events in log order, one JSON object a line:
  ``index`` (its leaf in the tree), ``event`` (the fields the log covers,
  ``ledger.chain.event_fields``) and ``proof`` (its inclusion proof to the checkpoint's
  root, hex, RFC 9162 §2.1.3);
- ``consistency.json`` (with ``since``): a checkpoint the auditor held before and the
  proof that the log now extends it (RFC 9162 §2.1.4);
- ``recipients.csv``: each recipient's final state, the number masked (``+8491*****78``),
  bound to the events: the checker replays each recipient's events to its status;
- ``verify_export.py``: the stand-alone checker (Python's standard library, and
  ``cryptography`` or ``openssl`` for the signature);
- ``manifest.json``: the format, campaign, counts and verifier key (for convenience: the
  checker trusts none of it but what it checks).

The folder is written under a temporary name and renamed when complete, so a failed
export leaves nothing that looks like one. The folder is its owner's alone (0700, its
files 0600: they describe people), and every CSV cell a spreadsheet would run as a
formula is neutralised with a leading quote (``campaigns.files.csv_cell``; the checker
takes it off again, ``plain_cell``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.files import (
    SQL_PLAIN_NUMBER,
    SQL_RISKY_FIRST,
    as_text,
    create_private,
    csv_row,
    output,
    plain_cell,
    private_folder,
    sweep_partials,
)
from campaigns.hours import VIETNAM
from campaigns.phones import mask
from campaigns.status import FINAL
from ledger.audit.actions import record_action
from ledger.audit.checkpoints import Checkpoint, CheckpointError, check, public_of, verifier_key
from ledger.audit.log import leaf_of, make_checkpoint, sealed
from ledger.audit.merkle import Tree
from ledger.chain import event_fields, seal_all, stamp
from ledger.schema import campaigns, messages, now

VERIFIER = Path(__file__).resolve().parents[1] / "scripts" / "verify_export.py"
#: The export's layout, as the checker knows it.
FORMAT = "loa-audit-export-v2"
VIETNAM_ISO = "%Y-%m-%dT%H:%M:%S+07:00"  # Vietnam keeps UTC+7 all year
RECIPIENT_COLUMNS = (
    "message_id", "number", "country", "carrier", "provider", "status", "error_code",
    "attempts", "sent_at", "final_at",
)  # fmt: skip


class ExportError(ValueError):
    """The export cannot be written where asked (the folder is not empty, not writable)."""


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


def recipients_digest(path: Path) -> tuple[int, str]:
    """How many recipients ``recipients.csv`` lists, and SHA-256 of their ``message_id,
    status`` lines (cells as they were before the formula quote), each ending in a line
    feed, in the file's order: what the export event commits, and the checker recomputes."""
    hashed, count = hashlib.sha256(), 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            line = f"{plain_cell(row['message_id'])},{plain_cell(row['status'])}\n"
            hashed.update(line.encode())
            count += 1
    return count, hashed.hexdigest()


def _write_events(path: Path, log: Tree, mine: list[tuple[int, dict[str, Any]]]) -> None:
    """The campaign's events, each with its inclusion proof in ``log``."""
    with create_private(path) as raw, as_text(raw) as out:
        for index, fields in mine:
            proof = [h.hex() for h in log.inclusion(index)]
            entry = {"index": index, "event": fields, "proof": proof}
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def recipient_rows(
    engine: Engine,
    campaign_id: str | None,
    times: Callable[[datetime], Any] = stamp,
    labels: Mapping[str, str] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Each recipient's final state, in ``RECIPIENT_COLUMNS`` order, the number masked
    (a number replaced after retention shows its HMAC, masked the same way). ``times``
    writes ``sent_at`` and ``final_at`` (default: the chain's UTC stamp; a report gives
    Vietnam's time, ``local_time``); ``labels`` names each status (default: as stored)."""
    labels = labels or {}
    query = sa.select(
        messages.c.id, messages.c.recipient, messages.c.country, messages.c.carrier,
        messages.c.provider, messages.c.status, messages.c.error_code, messages.c.attempts,
        messages.c.sent_at, messages.c.final_at,
    ).order_by(messages.c.id)  # fmt: skip
    if campaign_id is not None:
        query = query.join(campaigns, campaigns.c.key == messages.c.campaign_key).where(
            campaigns.c.id == campaign_id
        )
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=5000).execute(query):
            yield (
                row.id, mask(row.recipient), row.country, row.carrier or "", row.provider,
                labels.get(row.status, row.status), row.error_code or "", row.attempts,
                times(row.sent_at) if row.sent_at else "",
                times(row.final_at) if row.final_at else "",
            )  # fmt: skip


def local_time(at: datetime) -> str:
    """A time in Vietnam, ISO 8601 to the second with its offset: ``2026-11-30T20:49:49+07:00``."""
    return at.astimezone(VIETNAM).strftime(VIETNAM_ISO)


def _sql_cell(column: str) -> str:
    """``campaigns.files.csv_cell`` in PostgreSQL: the same quote on the same cells."""
    risky, plain = _sql_literal(SQL_RISKY_FIRST), _sql_literal(SQL_PLAIN_NUMBER)
    return (
        f"CASE WHEN {column} ~ {risky} AND {column} !~ {plain} "
        f"THEN '''' || {column} ELSE {column} END"
    )


def _sql_literal(pattern: str) -> str:
    """``pattern`` as an ``E'…'`` literal, with no raw control character in it."""
    escaped = pattern.replace("\\", "\\\\").replace("'", "''")
    return "E'" + escaped.replace("\t", "\\t").replace("\r", "\\r") + "'"


#: ``recipient_rows`` in SQL, for PostgreSQL's ``COPY``: a million rows leave the server as
#: CSV in about a second, where building each row in Python takes fifteen. The same
#: columns, mask (``campaigns.phones.mask``), time format (``ledger.chain.stamp``, or
#: ``local_time``), status labels and formula quote (``campaigns.files.csv_cell``); empty
#: values are NULL, so both ways write the same bytes (a test holds them to it).
_PG_RECIPIENTS = (
    "SELECT r.id, "
    + ", ".join(
        _sql_cell(f"r.{name}")
        for name in ("number", "country", "carrier", "provider", "status", "error_code")
    )
    + """, r.attempts, r.sent_at, r.final_at FROM (
SELECT m.id,
    CASE WHEN length(m.recipient) <= 7 THEN repeat('*', length(m.recipient))
         ELSE left(m.recipient, 5) || repeat('*', length(m.recipient) - 7) || right(m.recipient, 2)
    END AS number,
    m.country, m.carrier, m.provider, {status} AS status, m.error_code, m.attempts,
    to_char(m.sent_at AT TIME ZONE {zone}, {shape}) AS sent_at,
    to_char(m.final_at AT TIME ZONE {zone}, {shape}) AS final_at
FROM messages AS m {where}
) AS r
ORDER BY r.id
"""
)


def write_recipients(
    engine: Engine,
    target: Path | BinaryIO,
    campaign_id: str | None,
    *,
    bom: bool = False,
    copy: bool = True,
    header: Sequence[str] = RECIPIENT_COLUMNS,
    labels: Mapping[str, str] | None = None,
    local: bool = False,
) -> dict[str, int]:
    """A CSV of each recipient's final state (``RECIPIENT_COLUMNS``, numbers masked,
    cells a spreadsheet would run as formulas quoted: ``campaigns.files.csv_cell``) to
    ``target``: an open binary file, or a path where a new private file is made (0600,
    never over an existing name). Returns the count per status (as stored). ``bom``:
    start with a UTF-8 byte-order mark, which spreadsheet programs need to read
    Vietnamese. On PostgreSQL (unless ``copy`` is false) the rows are made by the server
    (``COPY``), streamed to the file. For a report: ``header`` the columns' titles (in
    ``RECIPIENT_COLUMNS`` order), ``labels`` each status's name (default: as stored),
    ``local`` the times in Vietnam (``local_time``) instead of UTC stamps.

    Raises:
        FileExistsError: ``target`` is a path already taken.
        OSError: the file cannot be written.
    """
    labels = labels or {}
    with output(target) as handle:
        if copy and engine.dialect.name == "postgresql":
            return _copy_recipients(engine, handle, campaign_id, bom, header, labels, local)
        statuses: dict[str, int] = {}
        status_at = RECIPIENT_COLUMNS.index("status")
        stored = {label: status for status, label in labels.items()}
        times = local_time if local else stamp
        with as_text(handle, "utf-8-sig" if bom else "utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(csv_row(header))
            for row in recipient_rows(engine, campaign_id, times, labels):
                status = stored.get(row[status_at], row[status_at])
                statuses[status] = statuses.get(status, 0) + 1
                writer.writerow(csv_row(row))
    return statuses


def _copy_recipients(
    engine: Engine,
    out: BinaryIO,
    campaign_id: str | None,
    bom: bool,
    header: Sequence[str],
    labels: Mapping[str, str],
    local: bool,
) -> dict[str, int]:
    from psycopg import sql

    where, status = sql.SQL(""), sql.SQL("m.status")
    if labels:
        status = sql.SQL("CASE m.status {} ELSE m.status END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(sql.Literal(key), sql.Literal(label))
                for key, label in labels.items()
            )
        )
    zone = sql.Literal("Asia/Ho_Chi_Minh" if local else "UTC")
    shape = sql.Literal(
        'YYYY-MM-DD"T"HH24:MI:SS"+07:00"' if local else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
    )
    counted = sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
    if campaign_id is not None:
        key = sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id).scalar_subquery()
        counted = counted.where(messages.c.campaign_key == key)
        where = sql.SQL("WHERE m.campaign_key = (SELECT key FROM campaigns WHERE id = {})").format(
            sql.Literal(campaign_id)
        )
    query = sql.SQL(_PG_RECIPIENTS).format(where=where, status=status, zone=zone, shape=shape)
    with engine.connect() as conn:
        statuses = dict(conn.execute(counted).all())
        cursor = conn.connection.driver_connection.cursor()
        with as_text(out, "utf-8-sig" if bom else "utf-8") as text:  # as the Python way
            csv.writer(text, lineterminator="\n").writerow(csv_row(header))
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
        with cursor.copy(copy_sql) as copy:
            for chunk in copy:
                out.write(chunk)
    return statuses


def _digest(path: Path) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def export(
    engine: Engine,
    out: Path,
    campaign_id: str,
    origin: str,
    seed: bytes,
    since: Checkpoint | None = None,
) -> dict[str, Any]:
    """Seal what is pending, sign a checkpoint of the whole log with ``seed`` under the
    log's name ``origin``, and write the export of ``campaign_id`` to the folder ``out``
    (with ``since``, a checkpoint the auditor holds, the proof that the log extends it).
    Returns the manifest.

    Raises:
        ExportError: ``out`` exists and is not empty, cannot be written, or ``since`` is
            not a checkpoint of this log (larger, or not in its tree: it was rewritten).
        CampaignNotFound: no such campaign.
        LogBroken: a sealed event is missing (``loa audit verify`` says more).
    """
    from ledger.summary import load_campaign

    load_campaign(engine, campaign_id)
    if out.is_symlink():
        raise ExportError(f"{out}: a symbolic link; Loa writes no export through a link")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: exists and is not an empty folder; choose a new one")
    sweep_partials(out)  # left by an export killed mid-way: personal data, for nobody
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        private_folder(out.parent)  # missing parents made 0700, existing ones left alone
        os.mkdir(partial, 0o700)  # new: nothing in it but what is written below
    except OSError as exc:
        raise ExportError(f"{out}: cannot write there ({exc.strerror})") from None
    try:
        # The recipients first (what they are now), then every event of the campaign
        # sealed so far, both committed to by an event of the export's own, which the
        # checkpoint then covers: a file edited, an event left out or a row dropped later
        # no longer matches what the log holds.
        statuses = write_recipients(engine, partial / "recipients.csv", campaign_id)
        recipients, rows_digest = recipients_digest(partial / "recipients.csv")
        seal_all(engine)
        found = _Leaves(campaign_id)
        with engine.begin() as conn:
            found.read(conn)
            nonce = uuid.uuid4().hex  # tells this export's event from any other's
            record_action(
                conn, "export", campaign_id, export=nonce,
                events=len(found.mine), events_digest=found.digest(),
                recipients=recipients, recipients_digest=rows_digest, statuses=statuses,
            )  # fmt: skip
        seal_all(engine)
        signed = make_checkpoint(engine, origin, seed)
        with engine.connect() as conn:
            found.read(conn, signed.size)
        mine = _through_export(found.mine, nonce)
        log = Tree(found.leaves)
        _write_events(partial / "events.jsonl", log, mine)
        count = len(mine)
        names = ["checkpoint.txt", "events.jsonl", "recipients.csv", "verify_export.py"]
        _write(partial / "checkpoint.txt", signed.text.encode())
        if since is not None:
            key = (origin, public_of(seed))
            _write_consistency(partial / "consistency.json", log, since, key)
            names.append("consistency.json")
        _write(partial / "verify_export.py", VERIFIER.read_bytes())
        manifest = {
            "format": FORMAT,
            "campaign": campaign_id,
            "exported_at": stamp(now()),
            "checkpoint": {"size": signed.size, "root": signed.root.hex(), "time": signed.time},
            "verifier_key": verifier_key(origin, public_of(seed)),
            "events": count,
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


def _through_export(
    mine: list[tuple[int, dict[str, Any]]], nonce: str
) -> list[tuple[int, dict[str, Any]]]:
    """The campaign's events up to and including this export's own (events sealed after
    it are for the next export)."""
    own = next(
        i for i, (_, fields) in enumerate(mine) if (fields["detail"] or {}).get("export") == nonce
    )
    return mine[: own + 1]


def _write(path: Path, data: bytes) -> None:
    with create_private(path) as handle:
        handle.write(data)


def _write_consistency(
    path: Path, log: Tree, since: Checkpoint, origin_key: tuple[str, bytes]
) -> None:
    """The proof that the log extends ``since``; refused when it cannot (the checkpoint
    is of a larger log, or its root is not this log's at its size: rewritten)."""

    try:
        check(since, *origin_key)
    except CheckpointError as exc:
        raise ExportError(f"--since: {exc}: not a checkpoint this log signed, or altered") from None
    if since.size > log.size:
        raise ExportError(
            f"--since: a checkpoint of {since.size} events; the log has {log.size}: it was cut"
        )
    if log.root(since.size) != since.root:
        raise ExportError(
            f"--since: the log's first {since.size} events no longer hash to that "
            "checkpoint's root: it was rewritten"
        )
    proof = {"since": since.text, "proof": [h.hex() for h in log.consistency(since.size)]}
    _write(path, (json.dumps(proof, indent=2) + "\n").encode())
