"""The operator's own actions are events, with who took them (issue #21): a suppression
list changed (how many, never which numbers), a provider resumed (on each campaign it
holds up, and on the whole ledger), a retention run; all sealed with the rest."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ledger.audit.actions import LEDGER, actor
from ledger.audit.verify import verify_log
from ledger.chain import seal_all
from ledger.halts import clear, halt
from ledger.retention import apply
from ledger.schema import events
from ledger.suppressions import add_numbers, remove_number
from tests.ledger.test_lease_rules import launch
from tests.ledger.test_ledger import SPEC


def actions(engine) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.campaign_id, events.c.detail)
            .where(events.c.source == "operator")
            .order_by(events.c.id)
        ).all()
    return [(campaign, detail) for campaign, detail in rows if "action" in (detail or {})]


def test_a_list_change_says_how_many_and_who_never_which_numbers(engine):
    assert add_numbers(engine, "dnc", ["+84912000111", "+84912000222"], "dnc.csv") == 2
    assert add_numbers(engine, "dnc", ["+84912000111"], "dnc.csv") == 0  # nothing new: no event
    assert remove_number(engine, "dnc", "+84912000222")
    assert not remove_number(engine, "dnc", "+84912000999")
    logged = actions(engine)
    assert logged == [
        (LEDGER, {"action": "suppressed", "by": actor(), "list": "dnc", "added": 2, "source": "dnc.csv"}),
        (LEDGER, {"action": "unsuppressed", "by": actor(), "list": "dnc", "removed": 1}),
    ]  # fmt: skip
    assert "912000" not in repr(logged)


def test_a_provider_resumed_is_said_on_each_campaign_it_held_up_and_on_the_ledger(engine):
    launch(engine, count=3)
    halt(engine, "sandbox", "0x0E wrong password")
    clear(engine, "sandbox")
    assert actions(engine) == [
        (SPEC.id, {"action": "provider_resumed", "by": actor(), "provider": "sandbox"}),
        (LEDGER, {"action": "provider_resumed", "by": actor(), "provider": "sandbox"}),
    ]


def test_a_retention_run_is_in_the_log_and_the_log_still_verifies(engine):
    launch(engine, count=3)
    applied = apply(engine, "k" * 24, timedelta(days=90))
    ((campaign, detail),) = actions(engine)
    assert campaign == LEDGER and detail["action"] == "retention"
    assert detail["older_than_days"] == 90 and detail["numbers"] == applied.numbers
    seal_all(engine)
    assert verify_log(engine).ok
