"""Settings that shape the jobs, read from the environment as an operator sets them and
checked on the paths production takes:

- ``LOA_BATCH_SIZE`` (200): recipients per job, as a launch enqueues them;
- ``LOA_SEND_CONCURRENCY`` (32): messages in flight at once to one provider from one
  worker process;
- ``LOA_WORKER_THREADS`` (8): threads of the embedded worker;
- ``LOA_MAX_ATTEMPTS`` (3) and ``LOA_IMMEDIATE_RETRIES`` (2): a message a provider keeps
  refusing for now is claimed at most ``MAX_ATTEMPTS`` times, each claim sending it at
  most ``1 + IMMEDIATE_RETRIES`` times, and then fails;
- ``LOA_SENDING_LEASE_SECONDS`` (900): what a dead worker left ``sending`` is settled by
  the reaper after this long, not before;
- ``LOA_REAPER_RESENDS_WITH_KEY`` (true): a message it had handed to a provider with an
  idempotency key is queued again (sent under the same key), not left ``unknown``;
- ``LOA_ORPHAN_AFTER_SECONDS`` (60): queued rows of a running campaign left alone this
  long, whose batch has no job in Redis, get their batch enqueued again."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from datetime import timedelta

import dramatiq
import pytest
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.worker import WorkerThread

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.db import make_engine
from ledger.handover import mark_handed
from ledger.messages import claim_batch
from ledger.migrate import upgrade
from ledger.schema import campaigns, messages, now
from ledger.summary import status_counts
from providers import ErrorKind, SendError
from tests.conftest import REDIS_URL
from tests.helpers import record
from tests.scripts.test_cli import EXAMPLE
from tests.worker.test_dispatch import SPEC, Recording, runtime_with_campaign
from tests.worker.test_sending import Failing, attempts
from worker.campaign.embedded import embedded_worker
from worker.campaign.launch import launch
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.sending.dispatch import send_batch
from worker.settings import Settings
from worker.upkeep.recovery import reap_stale, requeue_orphans


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """The environment of an operator who set only what the test sets: a ledger of its
    own, and no ``LOA_`` variable from the shell running the tests."""
    for name in [n for n in os.environ if n.startswith("LOA_")]:
        monkeypatch.delenv(name)
    url = f"sqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    monkeypatch.setenv("LOA_DATABASE_URL", url)
    monkeypatch.setenv("LOA_VAR_DIR", str(tmp_path / "var"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return monkeypatch


@pytest.mark.parametrize(("size", "batches"), [("3", [3, 3, 1]), (None, [7])])
def test_loa_batch_size_is_the_recipients_of_each_job_a_launch_enqueues(
    size, batches, env, tmp_path
):
    if size is not None:
        env.setenv("LOA_BATCH_SIZE", size)
    recipients = tmp_path / "list.csv"
    recipients.write_text(
        "Số điện thoại\n" + "".join(f"09123{i:05d}\n" for i in range(7)), encoding="utf-8"
    )
    settings = Settings()
    runtime = Runtime(settings)
    broker = use_broker(StubBroker(), settings)
    launched = launch(runtime, EXAMPLE, recipients)
    jobs = [dramatiq.Message.decode(raw) for raw in broker.queues["sms.sandbox"].queue]
    assert sorted(job.args[1] for job in jobs) == list(range(1, len(batches) + 1))
    assert launched.batches_enqueued == len(batches)
    with runtime.engine.connect() as conn:
        held = Counter(conn.scalars(sa.select(messages.c.batch)))
    assert [held[n] for n in sorted(held)] == batches


@pytest.mark.parametrize(("threads", "running"), [("3", 3), (None, 8)])
def test_loa_worker_threads_is_the_threads_of_the_embedded_worker(threads, running, env):
    if threads is not None:
        env.setenv("LOA_WORKER_THREADS", threads)
    runtime = Runtime(Settings())

    def working() -> int:
        return sum(isinstance(t, WorkerThread) and t.is_alive() for t in threading.enumerate())

    before = working()
    with embedded_worker(runtime):
        assert working() - before == running


#: Refused for now, this message only: a full queue at the carrier for this sender.
QUEUE_FULL = SendError(ErrorKind.RETRYABLE, "0x14", "message queue full")


@pytest.mark.parametrize(
    ("max_attempts", "retries", "claims", "sends_each"),
    [
        ("2", "1", 2, 2 * (1 + 1)),
        ("1", "0", 1, 1),
        (None, None, 3, 3 * (1 + 2)),  # the defaults: 3 attempts, 2 quick retries each
    ],
)
def test_a_message_refused_again_and_again_fails_after_its_attempts(
    max_attempts, retries, claims, sends_each, env, tmp_path
):
    if max_attempts is not None:
        env.setenv("LOA_MAX_ATTEMPTS", max_attempts)
    if retries is not None:
        env.setenv("LOA_IMMEDIATE_RETRIES", retries)
    engine = make_engine(os.environ["LOA_DATABASE_URL"])
    runtime_with_campaign(engine, tmp_path)  # 20 recipients in batch 1
    runtime = Runtime(Settings(), engine=engine)
    provider = Failing(QUEUE_FULL)  # refuses every send
    runtime._providers["sandbox"] = provider  # the one thing faked: the carrier
    use_broker(StubBroker(), runtime.settings)

    for claim in range(1, claims + 1):
        # The batch's job, come back as the retry a refusal enqueued.
        assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20
        send_batch(runtime, SPEC.id, 1)
        assert attempts(engine) == {claim}
    assert status_counts(engine, SPEC.id)[Status.FAILED] == 20
    assert Counter(Counter(m.message_id for m in provider.sent).values()) == {sends_each: 20}

    send_batch(runtime, SPEC.id, 1)  # a job delivered once more finds nothing to send
    assert len(provider.sent) == 20 * sends_each


def left_sending(engine, tmp_path, handed: int, ago: timedelta) -> None:
    """A worker claimed batch 1, handed ``handed`` of its messages to the provider and
    died ``ago``."""
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    marked = [m.id for m in claimed[:handed]]
    assert mark_handed(engine, marked, claimed[0].claim) == set(marked)
    with engine.begin() as conn:
        conn.execute(sa.update(messages).values(claimed_at=now() - ago))


@pytest.mark.parametrize(
    ("lease", "ago", "settled"),
    [
        # Each age on the other side of the other lease: 750 s is past 600, not 900.
        ("600", timedelta(seconds=450), False),
        ("600", timedelta(seconds=750), True),
        (None, timedelta(seconds=750), False),  # the default, 900 s
        (None, timedelta(seconds=1050), True),
    ],
)
def test_the_reaper_settles_what_a_dead_worker_left_after_loa_sending_lease_seconds(
    lease, ago, settled, env, tmp_path
):
    if lease is not None:
        env.setenv("LOA_SENDING_LEASE_SECONDS", lease)
    engine = make_engine(os.environ["LOA_DATABASE_URL"])
    left_sending(engine, tmp_path, handed=3, ago=ago)
    runtime = Runtime(Settings(), engine=engine)
    use_broker(StubBroker(), runtime.settings)
    reaped = reap_stale(runtime)  # what `loa reap` and every housekeeper run
    counts = status_counts(engine, SPEC.id)
    if settled:  # never handed: queued again; handed, without a key: unknown
        assert (reaped["requeued"], reaped["unknown"]) == (17, 3)
        assert (counts[Status.QUEUED], counts[Status.UNKNOWN], counts[Status.SENDING]) == (17, 3, 0)
    else:
        assert (reaped["requeued"], reaped["unknown"]) == (0, 0)
        assert counts[Status.SENDING] == 20


@pytest.mark.parametrize(("resends", "requeued", "unknown"), [(None, 20, 0), ("false", 17, 3)])
def test_loa_reaper_resends_with_key_queues_handed_messages_again_under_their_key(
    resends, requeued, unknown, env, tmp_path
):
    env.setenv("LOA_PROVIDERS__SANDBOX__IDEMPOTENCY_KEYS", "true")  # a provider with a key
    if resends is not None:
        env.setenv("LOA_REAPER_RESENDS_WITH_KEY", resends)
    engine = make_engine(os.environ["LOA_DATABASE_URL"])
    left_sending(engine, tmp_path, handed=3, ago=timedelta(hours=1))
    runtime = Runtime(Settings(), engine=engine)
    use_broker(StubBroker(), runtime.settings)
    reaped = reap_stale(runtime)
    assert (reaped["requeued"], reaped["unknown"]) == (requeued, unknown)
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.QUEUED], counts[Status.UNKNOWN]) == (requeued, unknown)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("after", "age", "requeued"),
    [
        # Each age on the other side of the other setting: 90 s is past 60, not 120.
        ("120", 90, 0),
        ("120", 150, 20),
        (None, 45, 0),  # the default, 60 s
        (None, 90, 20),
    ],
)
def test_loa_orphan_after_seconds_is_how_long_queued_rows_without_a_job_wait(
    after, age, requeued, env, tmp_path, redis_namespace
):
    env.setenv("LOA_REDIS_URL", REDIS_URL)
    env.setenv("LOA_REDIS_NAMESPACE", redis_namespace)
    if after is not None:
        env.setenv("LOA_ORPHAN_AFTER_SECONDS", after)
    engine = make_engine(os.environ["LOA_DATABASE_URL"])
    runtime_with_campaign(engine, tmp_path)  # 20 recipients in batch 1; no job in Redis
    with engine.begin() as conn:  # launched, and left alone since, ``age`` seconds ago
        conn.execute(sa.update(campaigns).values(created_at=now() - timedelta(seconds=age)))
    runtime = Runtime(Settings(), engine=engine)
    broker = RedisBroker(url=REDIS_URL, namespace=redis_namespace)
    use_broker(broker, runtime.settings)
    try:
        assert requeue_orphans(runtime) == requeued  # what every housekeeper runs
        client = redis.Redis.from_url(REDIS_URL)
        assert client.llen(f"{redis_namespace}:sms.sandbox") == (1 if requeued else 0)
        client.close()
    finally:
        broker.close()


class Crowding(Recording):
    """Holds every send until ``width`` are in flight and a message waits in the
    process's lane besides (or the last of ``total`` has started). A lane wider than
    ``width`` would have let that message go too, so the most seen in flight at once is
    ``width`` only if the process allows no more; fewer, and nothing is ever released."""

    def __init__(self, width: int, total: int) -> None:
        super().__init__()
        self.width, self.total, self.started, self.flying, self.most = width, total, 0, 0, 0
        self.waiting = lambda: 0  # messages queued in the lane, set once it exists

    async def send(self, message):
        self.started += 1
        self.flying += 1
        self.most = max(self.most, self.flying)
        async with asyncio.timeout(30):  # bounds a hang; the lane decides
            while self.started < self.total and not (self.flying >= self.width and self.waiting()):
                await asyncio.sleep(0.001)  # polling the lane; what it holds decides
        self.flying -= 1
        return await super().send(message)


@pytest.mark.parametrize(("concurrency", "width"), [("3", 3), (None, 32)])
def test_loa_send_concurrency_is_the_most_messages_in_flight_to_a_provider(
    concurrency, width, env, tmp_path
):
    if concurrency is not None:
        env.setenv("LOA_SEND_CONCURRENCY", concurrency)
    engine = make_engine(os.environ["LOA_DATABASE_URL"])
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(40)]
    record(engine, SPEC, rows, batch_size=40)
    runtime = Runtime(Settings(), engine=engine)
    provider = Crowding(width, total=40)
    runtime._providers["sandbox"] = provider  # the one thing faked: the carrier
    lane = runtime.send_lane("sandbox")
    provider.waiting = lambda: lane._queue.qsize() if lane._queue is not None else 0
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 40
    assert provider.most == width
