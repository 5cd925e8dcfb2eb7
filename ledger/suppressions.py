"""Suppression lists in the ledger: opt-outs and the Do-Not-Call register.

Loaded whole into ``NumberSet``s at planning (a bitmap per number range, so a register of
millions of numbers stays within a fixed size), edited by ``loa suppress``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.numbers import NumberSet
from campaigns.spec import MAX_VALIDITY, SUPPRESSION_LISTS
from campaigns.status import Status
from ledger.audit.actions import record_action
from ledger.schema import campaigns, messages, now, suppressions

CHUNK = 10_000


def add_numbers(engine: Engine, list_name: str, numbers: Iterable[str], source: str | None) -> int:
    """Add E.164 numbers to a list (already-listed ones are skipped); returns how many
    were new. One transaction: an import that fails halfway adds nothing."""
    assert list_name in SUPPRESSION_LISTS
    existing = load(engine, [list_name])[list_name]
    added, stamp = 0, now()
    with engine.begin() as conn:
        batch: list[dict[str, object]] = []
        for number in numbers:
            if existing.add(number):
                batch.append(
                    {"list": list_name, "number": number, "added_at": stamp, "source": source}
                )
                added += 1
            if len(batch) >= CHUNK:
                conn.execute(suppressions.insert(), batch)
                batch = []
        if batch:
            conn.execute(suppressions.insert(), batch)
        if added:  # how many, from where, by whom: never which numbers
            record_action(conn, "suppressed", list=list_name, added=added, source=source)
    return added


def remove_number(engine: Engine, list_name: str, number: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            suppressions.delete().where(
                suppressions.c.list == list_name, suppressions.c.number == number
            )
        )
        if result.rowcount:
            record_action(conn, "unsuppressed", list=list_name, removed=result.rowcount)
        return result.rowcount > 0


def load(engine: Engine, lists: Iterable[str]) -> dict[str, NumberSet]:
    """The numbers of each named list."""
    loaded = {name: NumberSet() for name in lists}
    if not loaded:
        return loaded
    query = sa.select(suppressions.c.list, suppressions.c.number).where(
        suppressions.c.list.in_(list(loaded))
    )
    with engine.connect() as conn:
        for list_name, number in conn.execution_options(yield_per=CHUNK).execute(query):
            loaded[list_name].add(number)
    return loaded


def counts(engine: Engine) -> dict[str, int]:
    query = sa.select(suppressions.c.list, sa.func.count()).group_by(suppressions.c.list)
    with engine.connect() as conn:
        found = dict(conn.execute(query).all())
    return {name: found.get(name, 0) for name in SUPPRESSION_LISTS}


def capped_numbers(
    engine: Engine, category: str, cap: int, window: timedelta = timedelta(hours=24)
) -> NumberSet:
    """Numbers that already have ``cap`` messages of ``category`` campaigns that went out
    in the last ``window`` (by when each was sent, not when its campaign was launched: a
    campaign launched yesterday evening sends this morning) or may still go out (queued,
    in flight, unknown). Messages that never went out (failed, expired, cancelled) don't
    count: cancelling a campaign to fix a typo must not use up the day's cap.

    Only campaigns that started within ``window`` plus the longest validity
    (``campaigns.spec.MAX_VALIDITY``) are read: an older one can have sent nothing since."""
    since = now() - window
    query = (
        sa.select(messages.c.recipient)
        .join(campaigns, campaigns.c.key == messages.c.campaign_key)
        .where(
            campaigns.c.category == category,
            sa.func.coalesce(campaigns.c.start_at, campaigns.c.created_at) >= since - MAX_VALIDITY,
            messages.c.status.not_in(
                [Status.FAILED.value, Status.EXPIRED.value, Status.CANCELLED.value]
            ),
            sa.or_(messages.c.sent_at >= since, messages.c.sent_at.is_(None)),
        )
        .group_by(messages.c.recipient)
        .having(sa.func.count() >= cap)
    )
    with engine.connect() as conn:
        return NumberSet(conn.scalars(query))


def page(
    engine: Engine, list_name: str, limit: int, offset: int
) -> list[tuple[str, object, str | None]]:
    """``(number, added_at, source)`` of a list, by number: ``limit`` of them after the
    first ``offset`` (the primary key's order: no sort of the list)."""
    query = (
        sa.select(suppressions.c.number, suppressions.c.added_at, suppressions.c.source)
        .where(suppressions.c.list == list_name)
        .order_by(suppressions.c.number)
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
