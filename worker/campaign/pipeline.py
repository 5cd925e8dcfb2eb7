"""Feeding planned rows to the ledger in chunks, planned here or in a second process.

A nationwide list is a million rows. Reading and planning them is CPU work in Python; the
ledger's INSERTs are CPU work in SQLite (or a COPY to PostgreSQL). Threads would take
turns on the GIL, so a large list is planned in a child process while this one writes:
on two cores the two halves overlap. The child gets the planner and the opened list and
sends back plain tuples in chunks, then its summary; an error on either side stops
both, and the ledger's transaction rolls everything back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path

from campaigns.plan import PlanSummary
from campaigns.stream import Chunk, child_main, plan_chunks
from worker.campaign.planning import Prepared

#: Lists at least this large (bytes) are planned in a child process; smaller ones would
#: spend more on starting it (~0.3 s) than they gain (about 80,000 rows and up).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


class PlanningFailed(RuntimeError):
    """The planning process died without saying why."""


def chunks_in_child(
    prepared: Prepared, rejects: Path | None
) -> tuple[Iterator[Chunk], Callable[[], PlanSummary]]:
    """Plan in a child process. Returns the chunks as they arrive, and a function giving
    the child's summary once they are all consumed."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=child_main,
        args=(sending, prepared.planner, prepared.recipients, rejects),
        name="loa-planner",
        daemon=True,
    )
    child.start()
    sending.close()
    result: dict[str, PlanSummary] = {}

    def chunks() -> Iterator[Chunk]:
        try:
            while True:
                try:
                    kind, payload = receiving.recv()
                except EOFError:
                    raise PlanningFailed(
                        f"the planning process stopped (exit code {child.exitcode})"
                    ) from None
                if kind == "chunk":
                    yield payload
                elif kind == "done":
                    result["summary"] = payload
                    return
                else:
                    raise payload
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
    return plan_chunks(prepared.planner, prepared.recipients, rejects), lambda: prepared.summary
