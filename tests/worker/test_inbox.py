"""The worker's inbox for what a provider's own connection delivers (``worker.inbox``):
stored before it is answered, and, when the worker stops, applied."""

from __future__ import annotations

import asyncio

from campaigns.status import Status
from ledger.receipts import APPLIED, PENDING
from providers.base import Receipt
from tests.ledger.receipt_scenes import SPEC, inbox, sent, statuses
from worker.inbox import LedgerInbox


def test_receipts_stored_in_a_workers_last_seconds_are_applied_when_it_stops(engine):
    """A clean stop mid-campaign once left them ``pending`` (the housekeeper that drains
    stops at once), their messages ``sent`` until a worker ran again."""
    ids = sent(engine, ["M1", "M2"])

    async def last_seconds(ledger_inbox: LedgerInbox) -> list:
        await ledger_inbox.receipt(Receipt("M1", Status.DELIVERED, "DELIVRD"), {"id": "M1"})
        await ledger_inbox.receipt(Receipt("M2", Status.UNDELIVERED, "UNDELIV"), {"id": "M2"})
        stored = [state for _, state, _ in inbox(engine)]
        await ledger_inbox.aclose()
        return stored

    stored = asyncio.run(last_seconds(LedgerInbox(engine, SPEC.provider)))
    assert stored == [PENDING, PENDING]  # stored, not applied, while it ran
    assert [state for _, state, _ in inbox(engine)] == [APPLIED, APPLIED]
    assert statuses(engine) == {ids["M1"]: "delivered", ids["M2"]: "undelivered"}


def test_an_inbox_that_stored_nothing_leaves_others_receipts_to_their_drainer(engine):
    from ledger.receipts import store
    from tests.ledger.receipt_scenes import receipt

    sent(engine, ["M1"])
    store(engine, [receipt("M1", Status.DELIVERED)])  # the webhook's, say

    async def idle(ledger_inbox: LedgerInbox) -> None:
        await ledger_inbox.aclose()

    asyncio.run(idle(LedgerInbox(engine, SPEC.provider)))
    assert [state for _, state, _ in inbox(engine)] == [PENDING]
