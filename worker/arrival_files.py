"""Arrival files as carriers and schedulers drop them: CSV (a header naming the fields)
or JSON lines, one file or an inbox folder of them. Each file taken is moved to ``done/``
beside it with a receipt (``NAME.receipt.json``: rows, welcomed, skipped and rejected by
reason) and, if any row was refused, ``NAME.rejects.csv`` (row, reason, field, detail). A
file that cannot be read at all (not UTF-8, not CSV or JSON lines) goes to ``failed/``
with a receipt saying why, and none of its rows is taken.

A file still being copied is not taken: names starting with ``.`` or ending in
``.part``, ``.tmp`` or ``.filepart`` are skipped, and so is a file modified in the last
few seconds (``settle``); the next look takes it.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.arrivals import Ingest, Ingested

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
IN_PROGRESS = (".part", ".tmp", ".filepart", ".crdownload")


class ArrivalFileError(ValueError):
    """A file that cannot be read as arrivals; the message names the file."""


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


def ready(folder: Path, settle: float, clock: Any = time.time) -> list[Path]:
    """The inbox's files to take now, oldest first."""
    found = []
    for path in folder.iterdir():
        name = path.name.lower()
        if not path.is_file() or name.startswith(".") or name.endswith(IN_PROGRESS):
            continue
        if path.suffix.lower() not in SUFFIXES:
            continue
        if clock() - path.stat().st_mtime < settle:
            continue  # still being written, perhaps
        found.append(path)
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


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
        with path.open("rb") as handle:
            for line in handle:
                number += 1
                line.decode("utf-8")
    except UnicodeDecodeError:
        raise ArrivalFileError(f"{path}: line {number}: not UTF-8 text") from None
    except OSError as exc:
        raise ArrivalFileError(f"{path}: cannot read ({exc.strerror})") from None
    if kind == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
        missing = {"event_id", "phone", "arrived_at", "area"} - {h.strip() for h in header}
        if missing:
            raise ArrivalFileError(f"{path}: line 1: the header lacks {', '.join(sorted(missing))}")
    return kind


def records(path: Path, kind: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, event)`` pairs; a JSON line that is not an object comes as ``{}`` (the
    ingest then refuses it for its missing event id)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if kind == "csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k}
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {}
            yield number, event if isinstance(event, dict) else {}


def take(ingest: Ingest, path: Path) -> FileOutcome:
    """Ingest one file and move it, with its receipt and rejects, to ``done/`` (or, when
    it cannot be read, to ``failed/``)."""
    try:
        kind = check_readable(path)
    except ArrivalFileError as exc:
        moved = _move(path, "failed", {"file": path.name, "problem": str(exc)})
        return FileOutcome(path, moved, problem=str(exc))
    result = ingest.run(records(path, kind))
    receipt = {"file": path.name, **result.as_dict()}
    moved = _move(path, "done", receipt, result.rejects)
    return FileOutcome(path, moved, result)


def _move(
    path: Path, folder: str, receipt: dict[str, Any], rejects: list[tuple[Any, ...]] | None = None
) -> Path:
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():  # the same name again: keep both
        target = target_dir / f"{path.stem}-{time.strftime('%Y%m%dT%H%M%S')}{path.suffix}"
    if rejects:
        with (target_dir / f"{target.name}.rejects.csv").open(
            "w", encoding="utf-8-sig", newline=""
        ) as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", "field", "detail"])
            writer.writerows(rejects)
    (target_dir / f"{target.name}.receipt.json").write_text(
        json.dumps(receipt, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    path.replace(target)
    return target
