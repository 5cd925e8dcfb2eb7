"""Dead letters in real Redis: listed, and run again with their retries reset."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from tests.conftest import REDIS_URL
from worker.queues.deadletters import dead_letters, requeue

pytestmark = pytest.mark.redis


def test_dead_jobs_are_listed_and_requeued(redis_namespace):
    queue = "sms.sandbox"
    broker = RedisBroker(url=REDIS_URL, namespace=redis_namespace)
    broker.declare_queue(queue)
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=queue,
            actor_name="send_batch",
            args=("c", 7),
            kwargs={},
            options={"retries": 5, "traceback": "Traceback\\nOperationalError: db down"},
        )
    )
    consumer = broker.consume(queue, timeout=100)
    taken = next(consumer)
    consumer.nack(taken)  # what dramatiq does when retries are exhausted

    (dead,) = dead_letters(broker, [queue, "receipts"])
    assert (dead.message_id, dead.actor, dead.args) == (sent.message_id, "send_batch", ("c", 7))
    assert requeue(broker, [queue], {"not-an-id"}) == 0
    assert requeue(broker, [queue], {sent.message_id}) == 1
    assert dead_letters(broker, [queue]) == []
    again = next(consumer)
    assert again.message_id == sent.message_id and again.args == ("c", 7)
    assert "retries" not in again.options
    consumer.ack(again)
    consumer.close()
