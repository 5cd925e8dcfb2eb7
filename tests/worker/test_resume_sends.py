"""``loa campaign resume`` on a campaign that still has messages to send: its waiting
batches go back on the provider's queue, and a worker taking them sends every message.

A pause does not take jobs off the queue: each job that comes while the campaign is
paused claims nothing and is done with (``send_batch`` skips a campaign that is not
running). What is still ``queued`` afterwards has no job left anywhere, so resume is
the only thing that puts its batches back: if it enqueued nothing, the campaign would sit
``running`` with its recipients ``queued`` for good.
"""

from __future__ import annotations

import dramatiq
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.schema import messages
from ledger.summary import load_campaign, status_counts
from tests.helpers import record
from tests.worker.test_dispatch import SPEC, Recording, runtime_for
from worker.campaign import control
from worker.queues.broker import queue_for, use_broker
from worker.runtime import set_runtime
from worker.sending.dispatch import send_batch

RECIPIENTS, BATCH_SIZE = 20, 5  # four batches of five


def _jobs(broker: StubBroker, queue: str) -> list[tuple[str, tuple]]:
    """The jobs waiting on ``queue``: actor and arguments."""
    decoded = [dramatiq.Message.decode(raw) for raw in broker.queues[queue].queue]
    return [(job.actor_name, tuple(job.args)) for job in decoded]


def _batch_of(engine) -> dict[int, int]:
    """Message id -> its batch."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(messages.c.id, messages.c.batch)).all())


def test_resume_puts_the_batches_left_queued_back_and_a_worker_sends_them(engine, tmp_path):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(RECIPIENTS)]
    record(engine, SPEC, rows, batch_size=BATCH_SIZE)
    provider = Recording()
    runtime = runtime_for(engine, tmp_path, provider)
    broker = use_broker(StubBroker(), runtime.settings)
    queue = queue_for("sandbox")

    send_batch(runtime, SPEC.id, 1)  # the first batch went out before the pause …
    assert control.pause(runtime, SPEC.id) == 1
    for batch in (2, 3, 4):  # … the jobs of the others came while paused: no claim
        send_batch(runtime, SPEC.id, batch)
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.SENT], counts[Status.QUEUED]) == (5, 15)
    assert _jobs(broker, queue) == []  # nothing anywhere would send the fifteen

    assert control.resume(runtime, SPEC.id) == 3
    assert load_campaign(engine, SPEC.id).state == "running"
    assert sorted(_jobs(broker, queue)) == [
        ("send_batch", (SPEC.id, batch, "sandbox")) for batch in (2, 3, 4)
    ]

    set_runtime(runtime)  # the actors find it here, as in a worker process
    # A short poll: stopping the worker waits for its consumers' current poll to end.
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        broker.join(queue, timeout=120_000, fail_fast=True)  # bounds a hang
        worker.join()
    finally:
        worker.stop()
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.SENT], counts[Status.QUEUED]) == (RECIPIENTS, 0)
    sent = [m.message_id for m in provider.sent]
    assert len(sent) == len(set(sent)) == RECIPIENTS  # each recipient once
    batches = _batch_of(engine)
    per_batch = {b: sum(1 for m in sent if batches[m] == b) for b in (1, 2, 3, 4)}
    assert per_batch == dict.fromkeys((1, 2, 3, 4), BATCH_SIZE)
