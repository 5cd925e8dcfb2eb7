"""Retention outside the ledger: the arrivals inbox's processed files.

``loa arrivals ingest`` and ``loa scheduler --inbox`` move each file they take to the
inbox's ``done/`` folder, with ``NAME.receipt.json`` (counts only: rows read, welcomed,
skipped and rejected by reason) and ``NAME.rejects.csv`` (line, reason, field), and a
file they cannot read to ``failed/`` untouched: the original files hold every visitor's
whole number. ``remove_old_files`` removes a file and its companions once all of them
are older than the retention period (by modification time: a file keeps its own when it
is moved, its receipt has the time it was taken; a group goes when its newest member is
that old). ``loa retention apply --inbox DIR`` runs it, and ``loa scheduler --inbox``
runs it by itself once a day.

Nothing is followed: ``done/`` and ``failed/`` are opened without following a link
(``O_NOFOLLOW``: a folder replaced by a link to elsewhere is left alone, named in the
result), entries are examined with ``lstat`` and removed relative to the folder's own
descriptor, and only regular files are removed: a link (or a folder) inside is left as
it is, never its target. Files of the inbox itself (not taken yet) are not touched.

Elsewhere Loa keeps no number on disk: the spool (``worker.sending.spool``) holds message ids,
provider ids and codes; logs mask numbers; reports and exports mask them too, and are
the user's files, as are the clean lists and rejects files ``loa`` was asked to write.
In Redis, a job holds a campaign id, a batch number and a provider name (the sandbox's
simulated receipts: its id and a status), so a dead letter holds no number either;
dramatiq keeps dead letters for 7 days.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from worker.logging import get_logger

log = get_logger("loa.retention")

#: The inbox's folders of processed files (``worker.arrivals.inbox``).
FOLDERS = ("done", "failed")
#: What ``worker.arrivals.inbox`` writes beside a file it moved.
COMPANIONS = (".receipt.json", ".rejects.csv")


@dataclass
class Removed:
    """What ``remove_old_files`` did: files removed, files kept (not old enough), and
    what it left alone (links, folders, a folder that is a link), named."""

    removed: int = 0
    kept: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"removed": self.removed, "kept": self.kept, "skipped": self.skipped}


def _group(name: str) -> str:
    """The file a name belongs to: a receipt or rejects file belongs to the file it
    describes; any other file to itself."""
    for suffix in COMPANIONS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def remove_old_files(
    inboxes: Iterable[Path], older_than: timedelta, clock: float | None = None
) -> Removed:
    """Remove the processed arrival files (and their receipts and rejects) in each
    inbox's ``done/`` and ``failed/`` whose group was last modified more than
    ``older_than`` ago. A missing folder is nothing to do."""
    cutoff = (time.time() if clock is None else clock) - older_than.total_seconds()
    result = Removed()
    for inbox in inboxes:
        for folder in FOLDERS:
            _sweep(Path(inbox) / folder, cutoff, result)
    if result.removed or result.skipped:
        log.info("retention.files", **result.as_dict())
    return result


def _sweep(folder: Path, cutoff: float, result: Removed) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(folder, flags)
    except FileNotFoundError:
        return
    except OSError as exc:  # a link (ELOOP), not a folder, unreadable: left alone
        result.skipped.append(f"{folder} ({'a link' if folder.is_symlink() else exc.strerror})")
        return
    try:
        groups: dict[str, list[tuple[str, float]]] = {}
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    info = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if not stat.S_ISREG(info.st_mode):
                    kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a file"
                    result.skipped.append(f"{folder / entry.name} ({kind})")
                    continue
                groups.setdefault(_group(entry.name), []).append((entry.name, info.st_mtime))
        for members in groups.values():
            if max(mtime for _, mtime in members) >= cutoff:
                result.kept += len(members)
                continue
            for name, _ in members:
                try:
                    # unlink never follows a link, and dir_fd pins the folder we opened.
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    continue  # removed meanwhile (another sweep)
                except OSError as exc:  # not ours to remove (permissions): named
                    result.skipped.append(f"{folder / name} ({exc.strerror})")
                    continue
                result.removed += 1
    finally:
        os.close(fd)
