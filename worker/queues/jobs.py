"""The jobs Loa puts on its queues, built by name: what enqueues a job needs neither the
actors nor the work behind them (``worker.queues.actors`` imports ``worker.sending.dispatch``, which
enqueues; building the message here keeps that a line, not a circle).

A job built here is the message ``actor.message(...)`` would build: dramatiq applies the
actor's options (retries, time limit) by its name when a worker takes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import dramatiq

from worker.queues.broker import RECEIPTS_QUEUE, queue_for

SEND_BATCH = "send_batch"
RECORD_RECEIPT = "record_receipt"


def enqueue_batch(
    provider_name: str, campaign_id: str, batch: int, delay_ms: int | None = None
) -> None:
    """Put one provider's share of a batch on that provider's queue (after ``delay_ms``)."""
    message = dramatiq.Message(
        queue_name=queue_for(provider_name),
        actor_name=SEND_BATCH,
        args=(campaign_id, batch, provider_name),
        kwargs={},
        options={},
    )
    dramatiq.get_broker().enqueue(message, delay=delay_ms)


def enqueue_receipt(provider_name: str, payload: Mapping[str, str], delay_ms: int | None) -> None:
    """Put one raw receipt on the receipts queue (after ``delay_ms``)."""
    message = dramatiq.Message(
        queue_name=RECEIPTS_QUEUE,
        actor_name=RECORD_RECEIPT,
        args=(provider_name, dict(payload)),
        kwargs={},
        options={},
    )
    dramatiq.get_broker().enqueue(message, delay=delay_ms or None)
