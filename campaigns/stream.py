"""A plan as a stream of chunks, ready for the ledger, and the operator's rejects file.

``plan_chunks`` turns a planner's decisions into (planned, rejected) chunks of plain
tuples: the shape the ledger writes and the cheapest to send to another process. When a
large list is planned in a child process (``worker/campaign/pipeline.py``), ``child_main`` runs
there; this module imports nothing but the domain, so that process starts light.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from multiprocessing.connection import Connection
from pathlib import Path

from campaigns.files import as_text, atomic_private, csv_row
from campaigns.plan import PlannedMessage, Planner, RejectedRow
from campaigns.recipients import ListError, RecipientList

#: Decisions per chunk: large enough to amortise a pipe message, small enough to stream.
CHUNK = 5000

#: (row, e164, country, carrier, provider, language, encoding, parts, fields as JSON or None)
PlannedRow = tuple[int, str, str, str | None, str, str, str, int, str | None]
#: (row, reason)
RejectedCell = tuple[int, str]
Chunk = tuple[list[PlannedRow], list[RejectedCell]]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def fields_json(values: tuple[str, ...]) -> str:
    """The list's other cells as a JSON array of strings. Cells rarely hold quotes,
    backslashes or control characters; when none does, joining is five times cheaper
    than the encoder."""
    if not values or _NEEDS_ESCAPE.search("".join(values)):
        return _dumps(values)
    return '["' + '","'.join(values) + '"]'


class RejectsFile:
    """The operator's rejects file: row number, the value as read, the reason. The value
    comes from the list, so a cell a spreadsheet would run as a formula is quoted
    (``campaigns.files.csv_cell``). The file is private (0600) and appears whole when the
    plan is complete (``campaigns.files.atomic_private``), never through a link."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def through(
        self, decisions: Iterable[PlannedMessage | RejectedRow]
    ) -> Iterator[PlannedMessage | RejectedRow]:
        """Pass decisions on, writing each rejection to the file on the way.

        Raises:
            ListError: the rejects file cannot be written.
        """
        if self.path is None:
            yield from decisions
            return
        stack = ExitStack()
        try:
            handle = stack.enter_context(atomic_private(self.path))
        except OSError as exc:
            raise self._error(exc) from None
        with stack:
            with as_text(handle) as text:
                writer = csv.writer(text)
                writer.writerow(["row", "value", "reason"])
                for decision in decisions:
                    if type(decision) is RejectedRow:  # in the header's order
                        writer.writerow(csv_row((decision.row, decision.raw, decision.reason)))
                    yield decision
            try:
                stack.close()  # complete: renamed onto the path
            except OSError as exc:
                raise self._error(exc) from None

    def _error(self, exc: OSError) -> ListError:
        return ListError(f"{self.path}: cannot write the rejects file ({exc.strerror})")


def plan_chunks(
    planner: Planner, recipients: RecipientList, rejects: Path | None = None
) -> Iterator[Chunk]:
    """Plan ``recipients`` and yield (planned rows, rejected cells) chunks."""
    decisions = planner.plan(recipients.rows())
    if rejects is not None:
        decisions = RejectsFile(rejects).through(decisions)
    with_fields = bool(recipients.columns)
    planned: list[PlannedRow] = []
    rejected: list[RejectedCell] = []
    for decision in decisions:
        if type(decision) is RejectedRow:
            rejected.append((decision[0], decision[1]))
        else:
            row, e164, country, carrier, provider, language, encoding, parts, values = decision
            fields = fields_json(values) if with_fields else None
            planned.append(
                (row, e164, country, carrier, provider, language, encoding, parts, fields)
            )
        if len(planned) + len(rejected) >= CHUNK:
            yield planned, rejected
            planned, rejected = [], []
    if planned or rejected:
        yield planned, rejected


def child_main(
    conn: Connection, planner: Planner, recipients: RecipientList, rejects: Path | None
) -> None:
    """Body of a planning process: chunks, then the summary, or the error, over ``conn``.
    When the parent is gone (killed: the pipe is broken) there is nobody to tell: the
    child ends quietly, rather than print two tracebacks to the operator's terminal."""
    try:
        for chunk in plan_chunks(planner, recipients, rejects):
            conn.send(("chunk", chunk))
        conn.send(("done", planner.summary))
    except (BrokenPipeError, ConnectionResetError):
        return
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            conn.send(("error", exc))
        except (BrokenPipeError, ConnectionResetError):
            return
    finally:
        conn.close()
