"""Feeding planned rows to the ledger in chunks, planned here or in a second process.

A nationwide list is a million rows. Reading and planning them is CPU work in Python; the
ledger's INSERTs are CPU work in SQLite (or a COPY to PostgreSQL). Threads would take
turns on the GIL, so a large list is planned in a child process while this one writes:
on two cores the two halves overlap. The child gets the prepared planner (campaign,
list, suppression lists) and sends back plain tuples in chunks, then its summary; an
error on either side stops both, and the ledger's transaction rolls everything back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from campaigns.plan import PlanSummary, RejectedRow
from worker.planning import Prepared, RejectsFile

#: Decisions per chunk: large enough to amortise a pipe message, small enough to stream.
CHUNK = 5000
#: Lists at least this large (bytes) are planned in a child process; smaller ones would
#: spend more on starting it (~0.5 s) than they gain.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024

Chunk = tuple[list[tuple], list[tuple]]  # type: ignore[type-arg]  (planned, rejected)


class PlanningFailed(RuntimeError):
    """The planning process died without saying why."""


def chunks_here(prepared: Prepared, rejects: Path | None) -> Iterator[Chunk]:
    """Plan in this process, yielding (planned, rejected) chunks."""
    planned: list[tuple] = []  # type: ignore[type-arg]
    rejected: list[tuple] = []  # type: ignore[type-arg]
    for decision in RejectsFile(rejects).through(prepared.decisions()):
        if type(decision) is RejectedRow:
            rejected.append(decision)
        else:
            planned.append(decision)
        if len(planned) + len(rejected) >= CHUNK:
            yield planned, rejected
            planned, rejected = [], []
    if planned or rejected:
        yield planned, rejected


def _child(conn: Connection, prepared: Prepared, rejects: Path | None) -> None:
    try:
        for planned, rejected in chunks_here(prepared, rejects):
            # Plain tuples: a NamedTuple pickles through its class, several times slower.
            conn.send(("chunk", [tuple(p) for p in planned], [tuple(r) for r in rejected]))
        conn.send(("done", prepared.summary))
    except BaseException as exc:  # handed to the parent, which raises it
        conn.send(("error", exc))
    finally:
        conn.close()


def chunks_in_child(
    prepared: Prepared, rejects: Path | None
) -> tuple[Iterator[Chunk], Callable[[], PlanSummary]]:
    """Plan in a child process. Returns the chunks as they arrive, and a function giving
    the child's summary once they are all consumed."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(sending, prepared, rejects), name="loa-planner", daemon=True
    )
    child.start()
    sending.close()
    result: dict[str, PlanSummary] = {}

    def chunks() -> Iterator[Chunk]:
        try:
            while True:
                try:
                    kind, *payload = receiving.recv()
                except EOFError:
                    raise PlanningFailed(
                        f"the planning process stopped (exit code {child.exitcode})"
                    ) from None
                if kind == "chunk":
                    yield payload[0], payload[1]
                elif kind == "done":
                    result["summary"] = payload[0]
                    return
                else:
                    raise payload[0]
        finally:
            receiving.close()
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()

    return chunks(), lambda: result["summary"]


def planned_chunks(
    prepared: Prepared, rejects: Path | None, *, parallel: bool | None = None
) -> tuple[Iterator[Chunk], Callable[[], PlanSummary]]:
    """Chunks of decisions and a summary getter; ``parallel=None`` decides by list size."""
    if parallel is None:
        parallel = prepared.recipients.path.stat().st_size >= PARALLEL_MIN_BYTES
    if parallel:
        return chunks_in_child(prepared, rejects)
    return chunks_here(prepared, rejects), lambda: prepared.summary
