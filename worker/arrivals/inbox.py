"""Arrival files as carriers and schedulers drop them: CSV (a header naming the fields)
or JSON lines, one file or an inbox folder of them. Each file taken is moved to ``done/``
beside it with a receipt (``NAME.receipt.json``: rows, welcomed, skipped and rejected by
reason) and, if any row was refused, ``NAME.rejects.csv`` (row, reason, field, detail). A
file that cannot be read at all (not UTF-8, not CSV or JSON lines) goes to ``failed/``
with a receipt saying why, and none of its rows is taken.

A file still being copied is not taken: names starting with ``.`` or ending in
``.part``, ``.tmp`` or ``.filepart`` are skipped, and so is a file modified in the last
few seconds (``settle``); the next look takes it.

Whoever can drop files in the inbox must not reach anything else through it. Only regular
files are read, never through a symbolic link: a link in the inbox is skipped and
reported (``scan``), and a file opened is checked on the open file (``open_regular``).
``done/`` and ``failed/`` are made 0700 and refused when they are links (``InboxError``).
Receipts and rejects are new private files (0600) made with ``O_EXCL | O_NOFOLLOW``, and
the file taken is moved by a hard link that cannot replace anything: when a name there is
taken (by a file or a planted link) another name is chosen, nothing is overwritten. Rejects
echo the feed's values, so their cells are quoted against formulas (``csv_row``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaigns.arrivals import ArrivalRejected, Rejected
from campaigns.files import (
    UnsafePath,
    create_private,
    csv_row,
    open_folder,
    open_regular,
    real_folder,
)
from worker.arrivals.ingest import UNAVAILABLE, Ingest, Ingested
from worker.logging import get_logger

log = get_logger("loa.arrivals")

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
#: Seconds ahead of now beyond which a file's modification time is not believed.
FUTURE_STAMP = 3600.0
IN_PROGRESS = (".part", ".tmp", ".filepart", ".crdownload")


class ArrivalFileError(ValueError):
    """A file that cannot be read as arrivals; the message names the file."""


class InboxError(ValueError):
    """The inbox cannot be worked safely (its ``done/`` or ``failed/`` is a link, or no
    free name is left there); the message names the folder."""


@dataclass
class FileOutcome:
    path: Path
    moved_to: Path
    ingested: Ingested | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        figures = self.ingested.as_dict() if self.ingested else {}
        return {
            "file": self.path.name,
            "moved_to": str(self.moved_to),
            "problem": self.problem,
            **figures,
        }


@dataclass
class Scan:
    """An inbox looked at: the files to take now (oldest first), the links skipped, and
    the files left for the next look because they changed within the settle time."""

    files: list[Path] = field(default_factory=list)
    links: list[Path] = field(default_factory=list)
    settling: list[Path] = field(default_factory=list)
    #: Named like arrivals but neither a regular file nor a link (a FIFO, a device, a
    #: folder): not read, and said.
    others: list[Path] = field(default_factory=list)


def scan(folder: Path, settle: float, clock: Any = time.time) -> Scan:
    """The inbox's regular files to take now, oldest first, and the symbolic links
    (with an arrivals suffix) it holds, which are not read."""
    found: list[tuple[float, str, Path]] = []
    links: list[Path] = []
    settling: list[Path] = []
    others: list[Path] = []
    for path in folder.iterdir():
        name = path.name.lower()
        if name.startswith(".") or name.endswith(IN_PROGRESS):
            continue
        if path.suffix.lower() not in SUFFIXES:
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # gone meanwhile
        if stat.S_ISLNK(info.st_mode):
            links.append(path)
            continue
        if not stat.S_ISREG(info.st_mode):
            others.append(path)
            continue
        age = clock() - info.st_mtime
        # Still being written, perhaps; but a file stamped more than an hour ahead (a
        # copy that kept a skewed clock's time) is not being written now: it would
        # otherwise wait, unreported, until that time came.
        if -FUTURE_STAMP < age < settle:
            settling.append(path)
            continue
        found.append((info.st_mtime, path.name, path))
    return Scan(
        [path for *_, path in sorted(found)], sorted(links), sorted(settling), sorted(others)
    )


def ready(folder: Path, settle: float, clock: Any = time.time) -> list[Path]:
    """The inbox's files to take now, oldest first; links are skipped and logged."""
    looked = scan(folder, settle, clock)
    for link in looked.links:
        log.warning("arrivals.link_skipped", file=link.name, why="a symbolic link: not read")
    for other in looked.others:
        log.warning("arrivals.file_skipped", file=other.name, why="not a regular file: not read")
    return looked.files


def check_inbox(folder: Path) -> None:
    """Refuse an inbox whose ``done/`` or ``failed/`` is a link (or not a folder): what
    Loa writes there would land wherever it points.

    Raises:
        InboxError: naming the folder.
    """
    for name in ("done", "failed"):
        target = folder / name
        if not os.path.lexists(target):
            continue
        info = target.lstat()
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise InboxError(
                f"{target}: a symbolic link or not a folder; Loa writes receipts only into "
                "a real folder there (remove it, or make it a folder)"
            )


def check_readable(path: Path) -> str:
    """The file's kind (``csv`` or ``jsonl``), after checking it is UTF-8 throughout (so a
    bad byte late in a file cannot leave its first rows taken and the rest not).

    Raises:
        ArrivalFileError: unknown kind, unreadable, not UTF-8, or a CSV without the fields.
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ArrivalFileError(f"{path}: not a .csv or .jsonl file")
    number = 0
    try:
        with _open(path) as handle:
            for line in handle:
                number += 1
                line.decode("utf-8")
    except UnicodeDecodeError:
        raise ArrivalFileError(f"{path}: line {number}: not UTF-8 text") from None
    except OSError as exc:
        raise ArrivalFileError(f"{path}: cannot read ({exc.strerror})") from None
    if kind == "csv":
        with _text(path) as handle:
            header = next(csv.reader(handle), [])
        missing = {"event_id", "phone", "arrived_at", "area"} - {h.strip() for h in header}
        if missing:
            raise ArrivalFileError(f"{path}: line 1: the header lacks {', '.join(sorted(missing))}")
    return kind


def records(path: Path, kind: str) -> Iterator[tuple[int, Mapping[str, Any] | ArrivalRejected]]:
    """``(line, event)`` pairs; a JSON line that is not an object comes as ``{}`` (the
    ingest then refuses it for its missing event id). A row the format itself cannot
    read (a CSV field over 128 KB, JSON that is not JSON or nested past Python's limit)
    comes as an ``ArrivalRejected`` for that row: refused alone, the rows after it read."""
    with _text(path) as handle:
        if kind == "csv":
            reader = csv.DictReader(handle)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # the reader goes on at the next line
                    yield (
                        reader.reader.line_num,
                        ArrivalRejected(Rejected.UNREADABLE, "row", str(exc)),
                    )
                    continue
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k}
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                yield number, ArrivalRejected(Rejected.UNREADABLE, "line", "not a JSON object")
                continue
            yield number, event if isinstance(event, dict) else {}


def take(ingest: Ingest, path: Path) -> FileOutcome:
    """Ingest one file and move it, with its receipt and rejects, to ``done/`` (or, when
    it cannot be read, to ``failed/``).

    Raises:
        InboxError: ``done/`` or ``failed/`` beside it is a link (checked before the file
            is read), or no free name is left there.
    """
    check_inbox(path.parent)
    try:
        kind = check_readable(path)
    except ArrivalFileError as exc:
        moved = _move(path, "failed", {"file": path.name, "problem": str(exc)})
        return FileOutcome(path, moved, problem=str(exc))
    try:
        result = ingest.run(records(path, kind))
    except UNAVAILABLE:
        raise  # the ledger or Redis away: the file stays for the next look
    except Exception as exc:  # a fault of Loa's own must not block the inbox for ever
        problem = (
            f"{path}: Loa could not take it ({type(exc).__name__}); events taken before "
            "the fault welcome nobody twice: put it back in the inbox to try again"
        )
        log.error("arrivals.file_failed", file=path.name, error=type(exc).__name__)
        moved = _move(path, "failed", {"file": path.name, "problem": problem})
        return FileOutcome(path, moved, problem=problem)
    receipt = {"file": path.name, **result.as_dict()}
    moved = _move(path, "done", receipt, result.rejects)
    return FileOutcome(path, moved, result)


def _open(path: Path) -> Any:
    """``path`` open in binary if it is a regular file reached without a link.

    Raises:
        ArrivalFileError: a link or not a regular file.
        OSError: it cannot be opened.
    """
    try:
        return open_regular(path)
    except UnsafePath as exc:
        raise ArrivalFileError(str(exc)) from None


def _text(path: Path) -> io.TextIOWrapper:
    return io.TextIOWrapper(_open(path), encoding="utf-8-sig", newline="")


def _move(
    path: Path, folder: str, receipt: dict[str, Any], rejects: list[tuple[Any, ...]] | None = None
) -> Path:
    """Move ``path`` into ``folder`` beside it with its receipt (and rejects), under the
    first name free for all three: nothing there is ever overwritten or followed. Every
    name is made relative to the folder opened once (``O_NOFOLLOW``): swapping the folder
    for a link meanwhile cannot send anything elsewhere."""
    try:
        target_dir = real_folder(path.parent / folder)
        folder_fd = open_folder(target_dir)
    except (UnsafePath, OSError) as exc:
        raise InboxError(f"{path.parent / folder}: {exc}") from None
    outputs = {".receipt.json": (json.dumps(receipt, ensure_ascii=False, indent=2) + "\n").encode()}
    if rejects:
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(["line", "reason", "field", "detail"])
        writer.writerows(csv_row(row) for row in rejects)  # values from the feed
        outputs[".rejects.csv"] = table.getvalue().encode("utf-8-sig")
    try:
        for name in _names(path):
            with ExitStack() as undo:
                try:
                    for suffix, data in outputs.items():
                        written = f"{name}{suffix}"
                        with create_private(written, dir_fd=folder_fd) as out:
                            undo.callback(os.unlink, written, dir_fd=folder_fd)
                            out.write(data)
                    _move_new(path, name, folder_fd)
                except FileExistsError:
                    continue  # a name taken (a file, a planted link): the next one
                undo.pop_all()  # all written and moved: keep them
            return target_dir / name
    finally:
        os.close(folder_fd)
    raise InboxError(f"{target_dir}: no free name left for {path.name}")


def _names(path: Path) -> Iterator[str]:
    """Names to try for ``path``: its own, then stamped with the time."""
    yield path.name
    stamp = time.strftime("%Y%m%dT%H%M%S")
    yield f"{path.stem}-{stamp}{path.suffix}"
    for n in range(2, 1000):
        yield f"{path.stem}-{stamp}-{n}{path.suffix}"


def _move_new(source: Path, name: str, folder_fd: int) -> None:
    """Move ``source`` to ``name`` in the open folder ``folder_fd``, a name that must be
    free: a hard link (which never replaces anything), then the old name removed. Where
    hard links cannot be made (some network file systems; another user's file under
    ``protected_hardlinks``), a rename after checking the name is free.

    Raises:
        FileExistsError: ``name`` is taken.
    """
    try:
        os.link(source, name, dst_dir_fd=folder_fd, follow_symlinks=False)
    except FileExistsError:
        raise
    except (OSError, NotImplementedError):
        with suppress(FileNotFoundError):
            os.lstat(name, dir_fd=folder_fd)
            raise FileExistsError(name) from None
        os.rename(source, name, dst_dir_fd=folder_fd)
    else:
        os.unlink(source)
    # It holds whole numbers: its owner's alone from now on, where it is ours to change
    # (a file another account dropped keeps its mode; the 0700 folder still hides it).
    with suppress(PermissionError, NotImplementedError):
        os.chmod(name, 0o600, dir_fd=folder_fd, follow_symlinks=False)
