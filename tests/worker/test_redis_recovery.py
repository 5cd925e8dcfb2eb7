"""A dead worker's jobs come back from Redis: no job is lost with the worker."""

from __future__ import annotations

import time

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from pydantic import SecretStr

from tests.conftest import REDIS_URL
from worker.queues.broker import build_broker
from worker.settings import Settings

pytestmark = pytest.mark.redis


def test_a_dead_workers_unacknowledged_job_is_delivered_again(redis_namespace):
    queue = "sms.sandbox"
    dying = RedisBroker(url=REDIS_URL, namespace=redis_namespace, heartbeat_timeout=1000)
    dying.declare_queue(queue)
    sent = dying.enqueue(
        dramatiq.Message(
            queue_name=queue, actor_name="send_batch", args=("c", 1), kwargs={}, options={}
        )
    )
    taken = next(dying.consume(queue, timeout=100))
    assert taken is not None and taken.message_id == sent.message_id
    # The worker dies here: no ack, no nack, no more heartbeats.

    settings = Settings(
        redis_url=SecretStr(REDIS_URL),
        redis_namespace=redis_namespace,
        redis_heartbeat_timeout_ms=1000,
        redis_maintenance_chance=1_000_000,
    )
    survivor = build_broker(settings)
    survivor.declare_queue(queue)
    consumer = survivor.consume(queue, timeout=100)
    deadline = time.monotonic() + 120  # bounds a hang: the job is back after 1 s
    again = None
    while again is None and time.monotonic() < deadline:
        again = next(consumer)  # each poll is a Redis command that may run maintenance
    assert again is not None and again.message_id == sent.message_id
    consumer.ack(again)
    consumer.close()
