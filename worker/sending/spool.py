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

An entry the ledger still refuses (a value it cannot store) never leaves its message
``sending``, where the reaper would queue it again and the provider send it once more
every few seconds (111 times each, once): the message is settled ``unknown`` (code
``bad_answer``: the provider answered, the ledger could not keep what it said) and the
file is set aside as ``.bad`` for a person.

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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from campaigns.files import private_folder
from campaigns.status import Status
from providers.base import CODE_LENGTH, ID_LENGTH, storable
from worker.logging import get_logger

log = get_logger("loa.spool")


class Spool:
    """The spool folder ``directory`` (made on first use, owner only).

    Entries are ``{"op": "sent", "campaign": ID, "id": MESSAGE, "pid": PROVIDER_ID}``
    (with ``"parts": [PROVIDER_ID, …]``, every part's id in order, for a message sent as
    several submissions; an entry without it, as older versions wrote, is a message sent
    whole) and ``{"op": "outcome", "id": MESSAGE, "status": STATUS, "code": CODE}``.
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

    def sent(
        self,
        campaign_id: str,
        sent: list[tuple[int, str]],
        parts: Mapping[int, Sequence[str]] | None = None,
    ) -> Path | None:
        """Keep provider ids the ledger could not take; ``parts``: by message id, each
        part's id, for messages sent as several submissions (``ledger.handover.record_sent``)."""
        parts = parts or {}
        return self.write(
            {"op": "sent", "campaign": campaign_id, "id": message_id, "pid": provider_id}
            | ({"parts": list(parts[message_id])} if len(parts.get(message_id, ())) > 1 else {})
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
        a file that cannot be read is set aside as ``.bad`` (and logged) so that it never
        blocks the others.

        Entries are believed only as far as a batch could have written them: provider ids
        (made ``storable``) for messages of the campaign they name that are still
        ``sending`` or were made ``unknown`` meanwhile, and ``failed`` or ``unknown`` for
        messages still ``sending`` or ``unknown``; anything else is skipped (and counted
        in the log). An entry that cannot be believed, or that the ledger refuses for
        good, settles its message ``unknown`` if it is still ``sending`` (never left
        there for the reaper to resend), and the file is set aside as ``.bad``."""
        written = 0
        for path in self.pending():
            try:
                entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
            except (ValueError, OSError) as exc:
                self._set_aside(path, exc)
                continue
            sent, outcomes, doubtful, without_id = _parse(entries)
            try:
                try:
                    kept = _apply(engine, sent, outcomes)
                except OperationalError:
                    raise
                except Exception as exc:  # refused for good: find which, one at a time
                    log.error("spool.refused_entries", file=path.name, error=type(exc).__name__)
                    kept, refused = _apply_each(engine, sent, outcomes)
                    doubtful.extend(refused)
                kept += _settle_in_doubt(engine, doubtful)
            except OperationalError:
                raise  # the ledger is away: this file and the rest wait for the next round
            except Exception as exc:  # not even ``unknown`` could be written
                self._set_aside(path, exc)
                continue
            written += kept
            if doubtful or without_id:
                why = f"{len(doubtful)} entries in doubt, {without_id} without a message id"
                self._set_aside(path, ValueError(why))
                continue
            path.unlink()
            log.info("spool.replayed", entries=len(entries), written=kept, file=path.name)
        return written

    @staticmethod
    def _set_aside(path: Path, error: BaseException) -> None:
        why = str(error) if isinstance(error, ValueError) else ""
        log.error("spool.unreadable", file=path.name, error=type(error).__name__, why=why)
        path.rename(path.with_suffix(".bad"))


#: The final statuses a batch spools (``worker.sending.batch``): a provider's final answer.
_SPOOLED_FINAL = frozenset({Status.FAILED, Status.UNKNOWN})
#: The statuses a spooled entry may still apply to.
_OPEN = (Status.SENDING.value, Status.UNKNOWN.value)
#: What a message whose result the ledger could not keep is settled with (``unknown``):
#: the provider answered, and what it said could not be kept.
IN_DOUBT = "bad_answer"

#: By campaign: (message id, provider id, each part's id: empty for a message sent whole).
Sent = dict[str, list[tuple[int, str, tuple[str, ...]]]]
Outcome = tuple[int, Status, str | None]


def _parse(entries: list[Any]) -> tuple[Sent, list[Outcome], list[int], int]:
    """The entries a batch could have written, their values made ``storable``; the ids
    of messages whose entry cannot be believed as it is (an empty provider id, a status
    a batch never spools, an unknown operation): those are in doubt; and how many
    entries had no message id at all (skipped)."""
    sent: Sent = defaultdict(list)
    outcomes: list[Outcome] = []
    doubtful: list[int] = []
    without_id = 0
    for entry in entries:
        message_id = _message_id(entry)
        if message_id is None:
            without_id += 1
            continue
        try:
            if entry["op"] == "sent":
                pid = storable(str(entry["pid"]), ID_LENGTH)
                if not pid:
                    raise ValueError("an empty provider id")
                sent[str(entry["campaign"])].append((message_id, pid, _parts(entry)))
            elif entry["op"] == "outcome":
                status = Status(entry["status"])
                if status not in _SPOOLED_FINAL:
                    raise ValueError(f"a spooled status a batch never writes: {status}")
                code = entry.get("code")
                code = None if code is None else storable(str(code), CODE_LENGTH)
                outcomes.append((message_id, status, code))
            else:
                raise ValueError(f"an unknown operation: {entry['op']!r}")
        except (ValueError, KeyError, TypeError) as exc:
            log.error("spool.entry_in_doubt", message_id=message_id, why=str(exc)[:100])
            doubtful.append(message_id)
    return sent, outcomes, doubtful, without_id


def _parts(entry: dict[str, Any]) -> tuple[str, ...]:
    """A sent entry's part ids, made ``storable`` (none in an entry without ``parts``).

    Raises:
        ValueError: ``parts`` is not a list of non-empty ids.
    """
    found = entry.get("parts")
    if found is None:
        return ()
    if not isinstance(found, list):
        raise ValueError("parts: not a list")
    parts = tuple(storable(str(pid), ID_LENGTH) for pid in found)
    if not all(parts):
        raise ValueError("parts: an empty provider id")
    return parts


def _message_id(entry: Any) -> int | None:
    """An entry's message id, if it has one the ledger's ids could be (a positive
    64-bit integer)."""
    value = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 63:
        return value
    return None


def _apply_each(engine: Engine, sent: Sent, outcomes: list[Outcome]) -> tuple[int, list[int]]:
    """``_apply`` one entry at a time, after the ledger refused them together: returns
    how many were written, and the ids of the messages whose entry it refused.

    Raises:
        OperationalError: the ledger went away meanwhile.
    """
    written, refused = 0, []
    alone: list[tuple[int, Sent, list[Outcome]]] = [
        (entry[0], {campaign: [entry]}, [])
        for campaign, entries in sent.items()
        for entry in entries
    ]
    alone += [(outcome[0], {}, [outcome]) for outcome in outcomes]
    for message_id, one_sent, one_outcome in alone:
        try:
            written += _apply(engine, one_sent, one_outcome)
        except OperationalError:
            raise
        except Exception as exc:
            log.error("spool.entry_refused", message_id=message_id, error=type(exc).__name__)
            refused.append(message_id)
    return written, refused


def _settle_in_doubt(engine: Engine, message_ids: list[int]) -> int:
    """Messages whose spooled result cannot be written: each still ``sending`` under the
    claim it had becomes ``unknown`` (``IN_DOUBT``), never left for the reaper to send
    again. Returns how many did."""
    from ledger.messages import record_outcome
    from ledger.schema import messages

    if not message_ids:
        return 0
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.id, messages.c.claim_token).where(
                messages.c.id.in_(set(message_ids)),
                messages.c.status == Status.SENDING.value,
            )
        ).all()
    settled = 0
    for message_id, claim in rows:
        # Conditional on the claim: one moved on since (recorded, or claimed again) stays.
        if record_outcome(engine, message_id, Status.UNKNOWN, "worker", IN_DOUBT, claim):
            settled += 1
    if settled:
        log.warning("spool.settled_unknown", messages=settled)
    return settled


def _apply(engine: Engine, sent: Sent, outcomes: list[Outcome]) -> int:
    """Write the entries that still apply; returns how many did."""
    from ledger.handover import record_sent
    from ledger.messages import record_outcome
    from ledger.schema import campaigns, messages

    ids = {m for entries in sent.values() for m, _, _ in entries} | {m for m, _, _ in outcomes}
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
    for campaign_id, entries in sent.items():
        fitting = [
            (m, pid, parts)
            for m, pid, parts in entries
            if m in state
            and state[m][1] == campaign_id
            and state[m][0] in _OPEN
            and state[m][2] is None
        ]
        record_sent(
            engine,
            campaign_id,
            [(m, pid) for m, pid, _ in fitting],
            {m: parts for m, _, parts in fitting if len(parts) > 1},
        )
        written += len(fitting)
    for message_id, status, code in outcomes:
        if message_id in state and state[message_id][0] in _OPEN:
            written += record_outcome(engine, message_id, status, "worker", code)
    skipped = sum(len(p) for p in sent.values()) + len(outcomes) - written
    if skipped:
        log.warning("spool.entries_skipped", skipped=skipped)
    return written
