"""Results the ledger could not take, kept on this machine's disk until it can.

A provider that accepted a message answers with its id, and that id is what its
receipts will name: lost, the message can only end ``unknown`` and no receipt can ever
correct it. When the ledger is unreachable at that moment (PostgreSQL restarting, a
network cut), the batch writes what it could not record to the spool (as courier does)
and winds down; the housekeeper of the same machine writes the spool into the ledger
as soon as it answers again (every ``worker.housekeeping`` round), whatever became of
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
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

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
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.is_symlink() or not self.directory.is_dir():
            raise OSError(f"{self.directory}: not a folder of Loa's own")
        return self.directory

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

    def pending(self) -> list[Path]:
        """Complete spool files, oldest first."""
        if not self.directory.is_dir():
            return []
        files = [p for p in self.directory.glob("*.jsonl") if p.is_file() and not p.is_symlink()]
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def replay(self, engine: Engine) -> int:
        """Write every complete spool file into the ledger, then delete it. Returns the
        entries written. A file the ledger cannot take yet stays for the next round; one
        that cannot be read is set aside as ``.bad`` (and logged)."""
        from ledger.handover import record_sent
        from ledger.messages import record_outcome

        written = 0
        for path in self.pending():
            try:
                entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
                sent: dict[str, list[tuple[int, str]]] = defaultdict(list)
                outcomes = []
                for entry in entries:
                    if entry["op"] == "sent":
                        sent[entry["campaign"]].append((int(entry["id"]), str(entry["pid"])))
                    else:
                        outcomes.append((int(entry["id"]), Status(entry["status"]), entry["code"]))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.error("spool.unreadable", file=path.name, error=type(exc).__name__)
                path.rename(path.with_suffix(".bad"))
                continue
            for campaign_id, pairs in sent.items():
                record_sent(engine, campaign_id, pairs)
            for message_id, status, code in outcomes:
                record_outcome(engine, message_id, status, "worker", code)
            path.unlink()
            written += len(entries)
            log.info("spool.replayed", entries=len(entries), file=path.name)
        return written
