"""A campaign's own state on both backends: what an operator or a worker sets, and the
scheduler starting what is due (once, and only what is due), each with its event."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ledger.audit.actions import actor
from ledger.messages import set_campaign_state, start_due
from ledger.schema import campaigns, events, now
from tests.ledger.test_claim_rules import launch
from tests.ledger.test_ledger import SPEC


def campaign_events(engine, campaign_id: str) -> list[tuple]:
    query = (
        sa.select(events.c.source, events.c.message_id, events.c.detail)
        .where(events.c.campaign_id == campaign_id)
        .order_by(events.c.id)
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def states(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        query = sa.select(campaigns.c.id, campaigns.c.state, campaigns.c.state_reason)
        return {i: (s, r) for i, s, r in conn.execute(query)}


def test_a_state_set_names_its_reason_and_who_set_it(engine):
    other = SPEC.model_copy(update={"id": "other-campaign"})
    launch(engine, count=3, spec=other)
    launch(engine, count=3)
    before = campaign_events(engine, SPEC.id)
    set_campaign_state(engine, SPEC.id, "halted", "sandbox refused every message")
    assert states(engine) == {
        SPEC.id: ("halted", "sandbox refused every message"),
        other.id: ("running", None),
    }
    set_campaign_state(engine, SPEC.id, "running", None, source="operator")
    assert states(engine)[SPEC.id] == ("running", None)
    assert campaign_events(engine, SPEC.id)[len(before) :] == [
        ("worker", None, {"state": "halted", "reason": "sandbox refused every message"}),
        ("operator", None, {"state": "running", "reason": None, "by": actor()}),
    ]  # an operator's move says who made it; a worker's needs not
    with engine.connect() as conn:
        at = conn.scalars(sa.select(events.c.at).order_by(events.c.id.desc()).limit(1)).one()
    assert abs(at - now()) < timedelta(hours=1)


def test_the_scheduler_starts_only_what_is_due_and_each_once(engine):
    names = ("due-earlier", "due-now", "later", "paused")
    for name in names:
        launch(engine, count=1, spec=SPEC.model_copy(update={"id": name}))
    moment = now()
    starts = {
        "due-earlier": moment - timedelta(hours=2),
        "due-now": moment,  # its start time is this very moment
        "later": moment + timedelta(minutes=1),
        "paused": moment - timedelta(hours=2),
    }
    with engine.begin() as conn:
        for name, start in starts.items():
            state = "paused" if name == "paused" else "scheduled"
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == name)
                .values(state=state, start_at=start, state_reason="waits for its start")
            )
    assert sorted(start_due(engine, moment)) == ["due-earlier", "due-now"]
    assert start_due(engine, moment) == []  # started already: never twice
    assert states(engine) == {
        "due-earlier": ("running", None),
        "due-now": ("running", None),
        "later": ("scheduled", "waits for its start"),
        "paused": ("paused", "waits for its start"),
    }
    for name in ("due-earlier", "due-now"):
        assert campaign_events(engine, name)[-1] == (
            "scheduler",
            None,
            {"state": "running", "reason": "its start time came"},
        )
    assert start_due(engine, moment + timedelta(minutes=1)) == ["later"]
