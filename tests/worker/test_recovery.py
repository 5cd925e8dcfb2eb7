"""Recovery without a person, on real Redis: a dead worker's claims settled within
seconds, its fetched jobs given back, and batches whose jobs Redis lost enqueued again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from pydantic import SecretStr

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.handover import mark_handed
from ledger.messages import claim_batch
from ledger.schema import campaigns, messages, now
from ledger.summary import status_counts
from tests.conftest import REDIS_URL
from tests.helpers import record
from tests.worker.conftest import redis_runtime
from tests.worker.test_dispatch import SPEC
from worker.processes.liveness import GRACE, Claims, publish
from worker.queues.broker import queue_for
from worker.runtime import Runtime
from worker.settings import Settings
from worker.upkeep.recovery import maintain_queues, reap_abandoned, requeue_orphans

pytestmark = pytest.mark.redis


@pytest.fixture
def runtime(engine, tmp_path, redis_namespace):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(20)]
    record(engine, SPEC, rows, batch_size=10)
    settings = {"redis_heartbeat_timeout_ms": 1000, "orphan_after_seconds": 2}
    with redis_runtime(engine, tmp_path, redis_namespace, **settings) as runtime:
        yield runtime


def backdate(engine, seconds: float) -> None:
    """As if every claim and the launch had happened ``seconds`` ago."""
    then = now() - timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(
            messages.update().where(messages.c.claimed_at.is_not(None)).values(claimed_at=then)
        )
        conn.execute(campaigns.update().values(created_at=then))


def test_the_claims_of_a_dead_worker_are_settled_and_a_live_ones_left_alone(engine, runtime):
    live, dead = Claims(), "0" * 32
    with live.holding(live.new_token()) as token:
        claim_batch(engine, SPEC.id, 1, token=token)
        doubtful = claim_batch(engine, SPEC.id, 2, token=dead)
        mark_handed(engine, [m.id for m in doubtful[:3]], dead)  # these may have gone out
        publish(runtime.redis(), runtime.settings.redis_namespace, live)
        backdate(engine, GRACE - 5)
        assert reap_abandoned(runtime) == {"requeued": 0, "unknown": 0}  # too recent yet
        backdate(engine, GRACE + 1)
        settled = reap_abandoned(runtime)
    assert settled == {"requeued": 7, "unknown": 3}
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.SENDING], counts[Status.QUEUED], counts[Status.UNKNOWN]) == (10, 7, 3)
    client = redis.Redis.from_url(REDIS_URL)
    queue = f"{runtime.settings.redis_namespace}:{queue_for('sandbox')}"
    assert client.llen(queue) == 1  # the settled batch is on its queue again


def test_a_batch_whose_job_redis_lost_is_enqueued_again_once(engine, runtime):
    backdate(engine, 3600)  # launched an hour ago; Redis has since lost every job
    client = redis.Redis.from_url(REDIS_URL)
    queue = f"{runtime.settings.redis_namespace}:{queue_for('sandbox')}"
    assert client.llen(queue) == 0
    assert requeue_orphans(runtime) == 20  # both batches' rows
    assert client.llen(queue) == 2
    assert requeue_orphans(runtime) == 0  # their jobs are there now: nothing twice
    with engine.begin() as conn:
        conn.execute(campaigns.update().values(state="paused"))
    client.delete(queue, f"{queue}.msgs")
    assert requeue_orphans(runtime) == 0  # a paused campaign waits for its resume


def test_jobs_a_dead_worker_had_fetched_go_back_to_their_queue(engine, runtime):
    from worker.queues.jobs import enqueue_batch

    namespace = runtime.settings.redis_namespace
    enqueue_batch("sandbox", SPEC.id, 1)
    dead = RedisBroker(url=REDIS_URL, namespace=namespace, heartbeat_timeout=1000)
    fetched = dead.do_fetch(queue_for("sandbox"), 1)  # a worker took it, then died
    assert len(fetched) == 1
    client = redis.Redis.from_url(REDIS_URL)
    queue = f"{namespace}:{queue_for('sandbox')}"
    assert client.llen(queue) == 0
    client.zadd(f"{namespace}:__heartbeats__", {dead.broker_id: 0})  # silent for ages
    assert maintain_queues(runtime) > 0
    assert client.llen(queue) == 1
    dead.close()


def test_without_redis_recovery_leaves_it_to_the_lease(engine, tmp_path):
    settings = Settings(
        database_url=SecretStr(engine.url.render_as_string(hide_password=False)), var_dir=tmp_path
    )
    runtime = Runtime(settings, engine=engine)
    assert reap_abandoned(runtime) is None
    assert requeue_orphans(runtime) is None
    assert maintain_queues(runtime) == 0


def test_resume_on_redis_enqueues_only_batches_without_a_job(engine, runtime):
    from worker.campaign import control

    assert control.resume(runtime, SPEC.id) == 2  # a running campaign whose jobs were lost
    assert control.resume(runtime, SPEC.id) == 0  # now they are there: none twice
