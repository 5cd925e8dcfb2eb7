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
