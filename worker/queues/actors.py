"""Loa's dramatiq actors. Thin on purpose: the work is in ``worker.sending.dispatch``.

This is the module ``dramatiq`` (and ``loa worker``) loads; importing ``worker.queues.broker``
first is what sets the broker before the actors below are defined.

Retry policy (dramatiq's defaults, 20 retries over up to 7 days, are wrong for SMS):
- ``send_batch`` raises only on infrastructure errors (the ledger unreachable); a few quick
  retries, then dead-letter. Provider errors never raise: they are settled per message.
- ``record_receipt`` raises ``ReceiptNotMatched`` when a receipt overtakes the send's
  answer; it is retried for a minute or so, which is far longer than that race lasts.
"""

from __future__ import annotations

import dramatiq

import worker.queues.broker  # noqa: F401 - sets the broker before any actor is defined
from worker.queues.broker import RECEIPTS_QUEUE, declare_queues
from worker.runtime import get_runtime
from worker.sending import dispatch
from worker.settings import get_settings


# Priorities (lower first) order what a worker process has already fetched: a receipt
# takes a free thread before the next batch, so deliveries show while a campaign is still
# sending instead of after its last batch (a batch holds its thread for as long as the
# provider's rate makes it last).
@dramatiq.actor(
    actor_name="send_batch",
    queue_name="sms.default",
    priority=10,
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=15 * 60 * 1000,
)
def send_batch(campaign_id: str, batch: int, provider: str | None = None) -> None:
    """Claim and send ``provider``'s messages in batch ``batch`` of ``campaign_id``
    (enqueued on that provider's queue; jobs from before routing name no provider and
    mean the campaign's own)."""
    dispatch.send_batch(get_runtime(), campaign_id, batch, provider)


@dramatiq.actor(
    actor_name="record_receipt",
    queue_name=RECEIPTS_QUEUE,
    priority=0,
    max_retries=8,
    min_backoff=250,
    max_backoff=15_000,
    time_limit=60 * 1000,
)
def record_receipt(provider_name: str, payload: dict[str, str]) -> None:
    """Apply one delivery receipt, as the provider sent it."""
    dispatch.record_receipt(get_runtime(), provider_name, payload)


ALL = (send_batch, record_receipt)

declare_queues(dramatiq.get_broker(), get_settings())
