"""A message the provider keeps refusing "for now" is tried ``max_attempts`` times and
then ends ``failed`` with the provider's code: never retried for ever, never given up
early.

Each attempt is one run of the batch's job: the message is claimed (its attempts count
one more), refused, given back, and the batch put on its queue again for later. The jobs
are worked here one at a time, as a worker takes them off the queue (the delayed ones
without waiting for their time: what is checked is what each run does, not when it
comes). The provider double counts every call, per message.
"""

from __future__ import annotations

from collections import Counter

import dramatiq
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.schema import events, messages
from ledger.summary import status_counts
from providers import ErrorKind, SendError
from tests.helpers import record
from tests.worker.test_dispatch import SPEC, Recording, runtime_for
from worker.queues.broker import queue_for, use_broker
from worker.queues.jobs import enqueue_batch
from worker.runtime import set_runtime

RECIPIENTS = 3
CODE = "queue_full"  # the provider's own code for "this sender's queue is full, later"


class QueueFull(Recording):
    """A provider that refuses every message for now, for this message only (not a
    provider-wide outage), and counts the calls per message."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[int] = Counter()

    async def send(self, message):
        self.calls[message.message_id] += 1
        raise SendError(ErrorKind.RETRYABLE, CODE, "sender queue full")

    def classify(self, error):
        return error


def _next_job(broker: StubBroker) -> dramatiq.Message | None:
    """The next job on the provider's queue, due now or delayed; ``None`` when none."""
    for name in (queue_for("sandbox"), f"{queue_for('sandbox')}.DQ"):
        waiting = broker.queues[name]
        if not waiting.empty():
            raw = waiting.get_nowait()
            waiting.task_done()
            return dramatiq.Message.decode(raw)
    return None


def _work_until_idle(broker: StubBroker, most: int) -> list[dramatiq.Message]:
    """Run the queue's jobs one after another until none is left (at most ``most``: a
    message retried for ever must fail the test, not hang it). Returns the jobs run."""
    ran = []
    while (job := _next_job(broker)) is not None:
        assert len(ran) < most, f"still retrying after {most} jobs"
        broker.get_actor(job.actor_name).fn(*job.args, **job.kwargs)
        ran.append(job)
    return ran


def _setup(engine, tmp_path, **settings):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(RECIPIENTS)]
    record(engine, SPEC, rows)
    provider = QueueFull()
    runtime = runtime_for(engine, tmp_path, provider, **settings)
    broker = use_broker(StubBroker(), runtime.settings)
    set_runtime(runtime)  # the actors find it here, as in a worker process
    enqueue_batch("sandbox", SPEC.id, 1)  # as the launch does
    return provider, broker


def _settled(engine) -> list[tuple]:
    query = sa.select(messages.c.status, messages.c.error_code, messages.c.attempts)
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def test_a_message_refused_for_now_at_every_attempt_fails_after_max_attempts(engine, tmp_path):
    max_attempts = 4  # not the default (3): the setting is what counts
    provider, broker = _setup(engine, tmp_path, max_attempts=max_attempts, immediate_retries=0)
    jobs = _work_until_idle(broker, most=max_attempts + 3)
    # One job per attempt: the first, then one delayed re-enqueue per attempt left.
    assert len(jobs) == max_attempts
    assert [("eta" in job.options) for job in jobs] == [False] + [True] * (max_attempts - 1)
    assert sorted(provider.calls.values()) == [max_attempts] * RECIPIENTS
    assert _settled(engine) == [("failed", CODE, max_attempts)] * RECIPIENTS
    assert status_counts(engine, SPEC.id)[Status.FAILED] == RECIPIENTS
    with engine.connect() as conn:
        final = conn.execute(
            sa.select(events.c.source, events.c.from_status, events.c.code).where(
                events.c.to_status == Status.FAILED.value
            )
        ).all()
    assert sorted(tuple(row) for row in final) == [("worker", "sending", CODE)] * RECIPIENTS


def test_immediate_retries_count_within_an_attempt_not_as_attempts(engine, tmp_path):
    """With quick retries on, each attempt calls the provider ``1 + immediate_retries``
    times, and the message still gets ``max_attempts`` attempts: at most
    ``max_attempts × (1 + immediate_retries)`` sends, as ``worker.sending.batch`` says."""
    provider, broker = _setup(engine, tmp_path, max_attempts=2, immediate_retries=1)
    assert len(_work_until_idle(broker, most=5)) == 2
    assert sorted(provider.calls.values()) == [2 * (1 + 1)] * RECIPIENTS
    assert _settled(engine) == [("failed", CODE, 2)] * RECIPIENTS


class RefusedOnce(QueueFull):
    """Refuses each message for now the first time it sees it, accepts it the next."""

    async def send(self, message):
        self.calls[message.message_id] += 1
        if self.calls[message.message_id] == 1:
            raise SendError(ErrorKind.RETRYABLE, CODE, "sender queue full")
        return await Recording.send(self, message)


def test_a_halt_charges_no_attempt_and_the_resumed_provider_has_them_all(engine, tmp_path):
    """The provider halts (bad credentials) on the batch's first send: every message is
    given back unprocessed, which is nobody's fault but the provider's, so its claim's
    attempt is taken back. After the operator's resume, each message still has its two
    attempts: refused for now at the first, sent at the second. Charged for the halt, it
    would have had one left and failed at its first refusal."""
    from ledger.halts import halted
    from tests.worker.test_dispatch import Refusing
    from worker.campaign.control import resume_provider

    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(RECIPIENTS)]
    record(engine, SPEC, rows)
    refusing = Refusing(SendError(ErrorKind.HALT, "http_401", "credentials refused"))
    settings = {"max_attempts": 2, "immediate_retries": 0, "send_concurrency": 1}
    runtime = runtime_for(engine, tmp_path, refusing, **settings)
    broker = use_broker(StubBroker(), runtime.settings)
    set_runtime(runtime)
    enqueue_batch("sandbox", SPEC.id, 1)

    assert len(_work_until_idle(broker, most=3)) == 1  # nothing re-enqueued: it waits
    assert halted(engine, "sandbox") is not None and len(refusing.sent) == 1
    assert _settled(engine) == [("queued", "http_401", 0)] * RECIPIENTS

    provider = RefusedOnce()
    runtime._providers["sandbox"] = provider
    runtime._lanes.pop("sandbox", None)  # its senders call the provider they were made with
    assert resume_provider(runtime, "sandbox") == 1
    assert len(_work_until_idle(broker, most=4)) == 2  # the resumed job, then its retry
    assert sorted(provider.calls.values()) == [2] * RECIPIENTS
    assert _settled(engine) == [("sent", None, 2)] * RECIPIENTS
