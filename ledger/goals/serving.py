"""The campaigns serving a goal, as the ledger keeps them: every campaign whose spec
carries a goal (``campaigns.spec.goal``, its population read at launch). Read by the
goal's imports (the population they are checked against), its section (where its pace
starts) and the daily report (which goals run that day)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.schema import campaigns


class Serving(NamedTuple):
    """One campaign serving a goal: its id, key, launch time and goal (as stored: a dict
    of ``campaigns.goals.GoalSpec``'s fields)."""

    id: str
    key: int
    created_at: datetime
    goal: dict[str, Any]


def serving(conn: Connection, goal: str | None = None) -> Iterator[Serving]:
    """The campaigns serving ``goal`` (by name; ``None``: any goal), in launch order."""
    rows = conn.execute(
        sa.select(
            campaigns.c.id, campaigns.c.key, campaigns.c.created_at, campaigns.c.spec
        ).order_by(campaigns.c.created_at, campaigns.c.key)
    )
    for campaign_id, key, created_at, spec in rows:
        carried = (spec or {}).get("goal")
        if carried and (goal is None or carried.get("name") == goal):
            yield Serving(campaign_id, key, created_at, carried)
