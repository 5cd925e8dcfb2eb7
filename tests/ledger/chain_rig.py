"""Shared by the chain's tests: an injected clock, events written with chosen ids (as a
transaction that committed late leaves them), and the link a seal holds."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ledger.schema import events, seals

T = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


class Clock:
    """The chain's clock, set by the test: ``now()`` returns ``at``."""

    def __init__(self, monkeypatch) -> None:
        self.at = T
        monkeypatch.setattr("ledger.chain.now", lambda: self.at)


def add_events(engine, ids, at=T) -> None:
    """Events as workers write them, with chosen ids."""
    with engine.begin() as conn:
        conn.execute(
            events.insert(),
            [{"id": i, "campaign_id": "c", "at": at, "source": "worker"} for i in ids],
        )


def link_at(engine, seq: int) -> str:
    with engine.connect() as conn:
        return conn.scalar(sa.select(seals.c.hash).where(seals.c.seq == seq))


def independent_root(engine, size: int) -> str:
    """The Merkle root of the first ``size`` sealed events by pymerkle, a maintained
    RFC 9162 tree that shares no code with ``ledger.audit``."""
    from pymerkle import InmemoryTree

    from ledger.chain import canonical

    tree = InmemoryTree(algorithm="sha256")
    query = (
        sa.select(events)
        .join(seals, seals.c.event_id == events.c.id)
        .order_by(seals.c.seq)
        .limit(size)
    )
    with engine.connect() as conn:
        for row in conn.execute(query):
            tree.append_entry(canonical(row))
    return tree.get_root().hex()
