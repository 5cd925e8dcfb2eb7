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


def record(engine, spec, rows, columns=(), batch_size=20, pseudonym_of=None, follows=None):
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
        pseudonym_of=pseudonym_of,
        follows=follows,
    )


def backdate(engine, delta, message_ids=None) -> None:
    """Move messages (all, or ``message_ids``) into the past by ``delta``: their sent and
    final times and their events' times together, as if it all happened then (the audit
    log holds a row's times to its events'), and nothing sealed, verified or signed yet
    (what was, was of events as they were). On PostgreSQL, with the append-only
    triggers off for the transaction, as only a test may."""
    import sqlalchemy as sa

    from ledger.schema import events, messages

    def chosen(column):
        return column.in_(message_ids) if message_ids is not None else column.is_not(None)

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        rows = conn.execute(
            sa.select(messages.c.id, messages.c.sent_at, messages.c.final_at).where(
                chosen(messages.c.id)
            )
        ).all()
        for message_id, sent_at, final_at in rows:
            conn.execute(
                messages.update()
                .where(messages.c.id == message_id)
                .values(sent_at=sent_at and sent_at - delta, final_at=final_at and final_at - delta)
            )
        logged = conn.execute(
            sa.select(events.c.id, events.c.at).where(chosen(events.c.message_id))
        ).all()
        for event_id, at in logged:
            conn.execute(events.update().where(events.c.id == event_id).values(at=at - delta))
        for table in ("seals", "verifications", "checkpoints"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
