"""How a batch treats a provider that refuses for now: quick retries in the job for one
message, a provider-wide cooldown (no attempt charged) when the provider is down."""

from __future__ import annotations

import time

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from campaigns.status import Status
from ledger.schema import messages
from ledger.summary import status_counts
from providers import ErrorKind, SendError, SendResult
from tests.worker.test_dispatch import SPEC, Recording, runtime_for, runtime_with_campaign
from worker.queues.broker import use_broker
from worker.sending.dispatch import send_batch


class Failing(Recording):
    """Refuses the first ``times`` sends with ``error``, then accepts."""

    def __init__(self, error: SendError, times: int | None = None, each: bool = False):
        super().__init__()
        self.error, self.times, self.each = error, times, each
        self.refused: list[int] = []

    async def send(self, message):
        self.sent.append(message)
        first_of_its_own = message.message_id not in self.refused
        if (self.each and first_of_its_own) or (
            not self.each and (self.times is None or len(self.refused) < self.times)
        ):
            self.refused.append(message.message_id)
            raise self.error
        return SendResult(provider_message_id=f"R{message.message_id}")

    def classify(self, error):
        return error


def attempts(engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(messages.c.attempts)).scalars())


def test_a_message_refused_for_now_is_retried_at_once_within_the_job(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    queue_full = SendError(ErrorKind.RETRYABLE, "0x14", "message queue full")
    provider = Failing(queue_full, each=True)
    runtime = runtime_for(engine, tmp_path, provider)
    broker = use_broker(StubBroker(), runtime.settings)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert len(provider.sent) == 40  # each refused once, then sent by tenacity
    assert attempts(engine) == {1}  # one claim each: no job came back for them
    assert not broker.queues["sms.sandbox.DQ"].queue


def test_a_provider_down_for_a_moment_pauses_the_batch_and_charges_nothing(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    down = SendError(ErrorKind.RETRYABLE, "http_503", "gateway error", provider_wide=True)
    provider = Failing(down, times=2)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    started = time.monotonic()
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert attempts(engine) == {1}
    assert len(provider.sent) == 22  # the refused one twice more, nothing else
    # Two refusals in a row: cooldowns of about 1 s then 2 s, waited out by the batch.
    assert time.monotonic() - started >= 0.75 + 1.5


def test_a_long_outage_gives_the_batch_back_for_when_it_ends(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    down = SendError(ErrorKind.RETRYABLE, "http_503", provider_wide=True, retry_after=30)
    runtime = runtime_for(engine, tmp_path, Failing(down))
    broker = use_broker(StubBroker(), runtime.settings)
    before = time.time()
    send_batch(runtime, SPEC.id, 1)
    after = time.time()
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20  # none lost, none failed
    assert attempts(engine) == {0}  # refunded: the provider never looked at them
    (raw,) = list(broker.queues["sms.sandbox.DQ"].queue)
    eta = dramatiq.Message.decode(raw).options["eta"] / 1000
    # Back when the outage's Retry-After (30 s) ends, counted from the refusal, which came
    # during send_batch: bounds that hold however long the batch took.
    assert before + 30 - 0.5 <= eta <= after + 30 + 0.5


class DownOnceQueued(Failing):
    """Down (503, Retry-After 30 s), and it says so only once the next message of the
    batch already waits in the lane for a sender."""

    def __init__(self, runtime_of):
        super().__init__(
            SendError(ErrorKind.RETRYABLE, "http_503", provider_wide=True, retry_after=30)
        )
        self.runtime_of = runtime_of

    async def send(self, message):
        import asyncio

        lane = self.runtime_of().send_lane("sandbox")
        async with asyncio.timeout(120):  # bounds a hang; the queue's size decides
            while lane._queue.qsize() == 0:
                await asyncio.sleep(0.001)
        return await super().send(message)


def test_what_waits_in_the_lane_is_held_back_once_the_provider_says_it_is_down(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    runtime = None
    provider = DownOnceQueued(lambda: runtime)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    use_broker(StubBroker(), runtime.settings)
    send_batch(runtime, SPEC.id, 1)
    assert len(provider.sent) == 1  # the next one was queued, and held back unsent
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20
    assert attempts(engine) == {0}


def test_a_recipient_who_said_stop_to_the_provider_joins_the_opt_out_list(engine, tmp_path):
    from ledger.suppressions import load

    runtime_with_campaign(engine, tmp_path)
    unsubscribed = SendError(ErrorKind.PERMANENT, "21610", "unsubscribed", opt_out=True)
    runtime = runtime_for(engine, tmp_path, Failing(unsubscribed, times=1))
    send_batch(runtime, SPEC.id, 1)
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.FAILED], counts[Status.SENT]) == (1, 19)
    with engine.connect() as conn:
        (refused,) = conn.execute(
            sa.select(messages.c.recipient).where(messages.c.status == Status.FAILED.value)
        ).scalars()
    opted_out = load(engine, ["opt_out"])["opt_out"]
    assert refused in opted_out and len(opted_out) == 1


@pytest.mark.parametrize(
    ("rate", "unit", "parts", "width", "group"),
    [
        (None, "messages", 1, 20, 10),  # no rate: half the lane's width
        (1000.0, "messages", 1, 20, 10),
        (50.0, "messages", 4, 20, 5),  # a tenth of a second of the rate
        (50.0, "parts", 1, 20, 5),
        (50.0, "parts", 5, 20, 1),  # 50 parts a second are 10 five-part messages
        (120.0, "parts", 3, 20, 4),
        (5.0, "parts", 2, 20, 1),  # never less than one
    ],
)
def test_what_is_marked_handed_at_once_is_a_tenth_of_a_second_of_the_rate(
    rate, unit, parts, width, group
):
    """A killed worker's handed messages become ``unknown``: a group marked handed
    ahead of the rate must stay small, in messages, whatever unit the rate counts."""
    from types import SimpleNamespace

    from worker.sending.batch import _group_size

    provider = SimpleNamespace(config=SimpleNamespace(rate_per_second=rate, rate_unit=unit))
    assert _group_size(provider, width, parts) == group
