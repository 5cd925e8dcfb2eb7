"""Small helpers shared by tests."""

from __future__ import annotations

from collections.abc import Iterable

from campaigns.plan import RejectedRow
from campaigns.stream import fields_json


def chunked(decisions: Iterable[object]) -> list[tuple[list[tuple], list[tuple]]]:  # type: ignore[type-arg]
    """Decisions as the one (planned, rejected) chunk ``record_campaign`` takes, in the
    shape ``campaigns.stream.plan_chunks`` gives (fields as JSON)."""
    planned, rejected = [], []
    for decision in decisions:
        if isinstance(decision, RejectedRow):
            rejected.append((decision.row, decision.reason))
        else:
            *head, values = decision
            planned.append((*head, fields_json(values) if values else None))
    return [(planned, rejected)]


def record(engine, spec, rows, columns=(), batch_size=20):
    """Plan ``rows`` for ``spec`` and record the campaign, as a launch does."""
    from campaigns.plan import Planner
    from ledger.intake import record_campaign

    planner = Planner(spec, list(columns))
    return record_campaign(
        engine,
        spec,
        "list.csv",
        list(columns),
        lambda: planner.summary,
        chunked(planner.plan(rows)),
        batch_size,
    )
