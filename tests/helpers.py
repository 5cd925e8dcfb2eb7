"""Small helpers shared by tests."""

from __future__ import annotations

from collections.abc import Iterable

from campaigns.plan import RejectedRow


def chunked(decisions: Iterable[object]) -> list[tuple[list[object], list[object]]]:
    """Decisions as the one (planned, rejected) chunk ``record_campaign`` takes."""
    planned, rejected = [], []
    for decision in decisions:
        (rejected if isinstance(decision, RejectedRow) else planned).append(decision)
    return [(planned, rejected)]
