"""Results the ledger could not take, kept on this machine's disk until it can.

A provider that accepted a message answers with its id, and that id is what its
receipts will name: lost, the message can only end ``unknown`` and no receipt can ever
correct it. When the ledger is unreachable at that moment (PostgreSQL restarting, a
network cut), the batch writes what it could not record to the spool (as courier does)
and winds down; the housekeeper of the same machine writes the spool into the ledger
as soon as it answers again (every ``worker.upkeep.housekeeping`` round), whatever became of
the rows meanwhile: a row still ``sending`` becomes ``sent``; one the reaper already
made ``unknown`` keeps that status but gets its provider id, so its receipt still lands
and corrects it.

Each spool file is one JSON object a line, written whole (a temporary file, flushed to
disk, renamed): a file either is there complete or not at all. Files hold message ids,
provider ids and codes, never a number or a text; they are readable by their owner only
and created without following links.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from campaigns.files import private_folder
from campaigns.status import Status
from worker.logging import get_logger

log = get_logger("loa.spool")


class Spool:
    """The spool folder ``directory`` (made on first use, owner only).

    Entries are ``{"op": "sent", "campaign": ID, "id": MESSAGE, "pid": PROVIDER_ID}``
    and ``{"op": "outcome", "id": MESSAGE, "status": STATUS, "code": CODE}``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _folder(self) -> Path:
        private_folder(self.directory)  # it and any missing parent (var_dir) made 0700
        if self.directory.is_symlink() or not self.directory.is_dir():
            raise OSError(f"{self.directory}: not a folder of Loa's own")
        return self.directory

    def check_writable(self) -> None:
        """Make the folder if need be and prove a file can be written there.

        Raises:
            OSError: it cannot (its path, a link, the permissions).
        """
        folder = self._folder()
        if not self.trusted():
            raise OSError(f"{folder}: a link, another user's, or writable by others")
        probe = folder / f".probe-{os.getpid()}-{uuid.uuid4().hex}"
        fd = os.open(
            probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        os.close(fd)
        probe.unlink()

    def write(self, entries: Iterable[dict[str, Any]]) -> Path | None:
        """Keep ``entries`` in a new spool file; returns it (``None``: nothing to keep)."""
        lines = [json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries]
        if not lines:
            return None
        folder = self._folder()
        name = f"results-{os.getpid()}-{uuid.uuid4().hex}"
        temporary, final = folder / f"{name}.tmp", folder / f"{name}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        log.warning("spool.written", entries=len(lines), file=final.name)
        return final

    def sent(self, campaign_id: str, sent: list[tuple[int, str]]) -> Path | None:
        """Keep provider ids the ledger could not take."""
        return self.write(
            {"op": "sent", "campaign": campaign_id, "id": message_id, "pid": provider_id}
            for message_id, provider_id in sent
        )

    def outcome(self, message_id: int, status: Status, code: str | None) -> Path | None:
        """Keep a final status the ledger could not take."""
        return self.write(
            [{"op": "outcome", "id": message_id, "status": status.value, "code": code}]
        )

    def trusted(self) -> bool:
        """Whether the folder is Loa's own to read: a real folder (not a link), owned by
        this user, writable by nobody else. Anything else is refused, loudly: whoever can
        write there could mark messages sent."""
        try:
            info = self.directory.lstat()
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            log.error("spool.refused", folder=str(self.directory), why="not a folder")
            return False
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            log.error("spool.refused", folder=str(self.directory), why="others may write it")
            return False
        return True

    def pending(self) -> list[Path]:
        """Complete spool files of this user's, oldest first (none from an untrusted
        folder)."""
        if not self.trusted():
            return []
        files = [
            p
            for p in self.directory.glob("*.jsonl")
            if p.is_file() and not p.is_symlink() and p.lstat().st_uid == os.getuid()
        ]
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def replay(self, engine: Engine) -> int:
        """Write every complete spool file into the ledger, then delete it. Returns the
        entries written. While the ledger is unreachable the files stay for the next round;
        a file that cannot be read, or that the ledger refuses for another reason, is set
        aside as ``.bad`` (and logged) so that it never blocks the others.

        Entries are believed only as far as a batch could have written them: provider ids
        for messages of the campaign they name that are still ``sending`` or were made
        ``unknown`` meanwhile, and ``failed`` or ``unknown`` for messages still
        ``sending`` or ``unknown``; anything else is skipped (and counted in the log)."""
        written = 0
        for path in self.pending():
            try:
                entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
                sent, outcomes = _parse(entries)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                self._set_aside(path, exc)
                continue
            try:
                kept = _apply(engine, sent, outcomes)
            except OperationalError:
                raise  # the ledger is away: this file and the rest wait for the next round
            except Exception as exc:  # refused for good (a value out of range …)
                self._set_aside(path, exc)
                continue
            path.unlink()
            written += kept
            log.info("spool.replayed", entries=len(entries), written=kept, file=path.name)
        return written

    @staticmethod
    def _set_aside(path: Path, error: BaseException) -> None:
        log.error("spool.unreadable", file=path.name, error=type(error).__name__)
        path.rename(path.with_suffix(".bad"))


#: The final statuses a batch spools (``worker.sending.batch``): a provider's final answer.
_SPOOLED_FINAL = frozenset({Status.FAILED, Status.UNKNOWN})
#: The statuses a spooled entry may still apply to.
_OPEN = (Status.SENDING.value, Status.UNKNOWN.value)


def _parse(
    entries: list[dict[str, Any]],
) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[int, Status, str | None]]]:
    sent: dict[str, list[tuple[int, str]]] = defaultdict(list)
    outcomes = []
    for entry in entries:
        if entry["op"] == "sent":
            pid = str(entry["pid"])
            if not 0 < len(pid) <= 64:
                raise ValueError("a provider id out of bounds")
            sent[str(entry["campaign"])].append((int(entry["id"]), pid))
        elif entry["op"] == "outcome":
            status = Status(entry["status"])
            if status not in _SPOOLED_FINAL:
                raise ValueError(f"a spooled status a batch never writes: {status}")
            code = entry.get("code")
            outcomes.append((int(entry["id"]), status, None if code is None else str(code)[:32]))
        else:
            raise ValueError(f"an unknown operation: {entry['op']!r}")
    return sent, outcomes


def _apply(
    engine: Engine,
    sent: dict[str, list[tuple[int, str]]],
    outcomes: list[tuple[int, Status, str | None]],
) -> int:
    """Write the entries that still apply; returns how many did."""
    from ledger.handover import record_sent
    from ledger.messages import record_outcome
    from ledger.schema import campaigns, messages

    ids = {m for pairs in sent.values() for m, _ in pairs} | {m for m, _, _ in outcomes}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                messages.c.id, messages.c.status, campaigns.c.id, messages.c.provider_message_id
            )
            .join(campaigns, campaigns.c.key == messages.c.campaign_key)
            .where(messages.c.id.in_(ids))
        ).all()
    state = {row[0]: (row[1], row[2], row[3]) for row in rows}
    written = 0
    for campaign_id, pairs in sent.items():
        fitting = [
            (m, pid)
            for m, pid in pairs
            if m in state
            and state[m][1] == campaign_id
            and state[m][0] in _OPEN
            and state[m][2] is None
        ]
        record_sent(engine, campaign_id, fitting)
        written += len(fitting)
    for message_id, status, code in outcomes:
        if message_id in state and state[message_id][0] in _OPEN:
            written += record_outcome(engine, message_id, status, "worker", code)
    skipped = sum(len(p) for p in sent.values()) + len(outcomes) - written
    if skipped:
        log.warning("spool.entries_skipped", skipped=skipped)
    return written
