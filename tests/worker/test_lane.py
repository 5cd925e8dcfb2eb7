"""The lane through the production path (``send_batch`` → lane → gate → provider): rate
tokens spent at the moment a request leaves, throttles that lower the rate instead of
pausing, and outages that pause."""

from __future__ import annotations

import asyncio

from campaigns.status import Status
from ledger.summary import status_counts
from providers import ErrorKind, SendError
from providers.sandbox import SandboxConfig
from tests.worker.test_dispatch import SPEC, Recording, runtime_for, runtime_with_campaign
from tests.worker.test_sending import attempts
from worker.sending.dispatch import send_batch
from worker.sending.ratelimit import LocalBucket


class Slow(Recording):
    """Takes a moment to answer, so that messages wait in the lane for a free sender;
    counts the requests it has begun."""

    config = SandboxConfig(rate_per_second=1000, burst=2)

    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    async def send(self, message):
        self.started += 1
        await asyncio.sleep(0.005)
        return await super().send(message)


class Watching(LocalBucket):
    """A bucket that checks, each time it is asked, that every token it granted before
    was spent by a request already begun: none waits for later."""

    def __init__(self, provider: Slow) -> None:
        super().__init__(rate=1000, burst=2)
        self.provider, self.granted, self.unspent_at_ask = provider, 0, []

    async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
        self.unspent_at_ask.append(self.granted - self.provider.started)
        granted, wait = self.take_now(most, least)
        self.granted += granted
        return granted, wait


def test_tokens_are_spent_by_requests_leaving_at_once_not_by_messages_queued(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    provider = Slow()
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=4)
    bucket = Watching(provider)
    runtime._buckets["rate:sandbox"] = bucket
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert bucket.granted == 20  # one token per request, none taken for a group
    assert set(bucket.unspent_at_ask) == {0}
    assert len(bucket.unspent_at_ask) > 1  # it was asked again and again, as senders freed


class Throttling(Recording):
    """Answers every ``every``-th request 429, with ``Retry-After`` when given."""

    config = SandboxConfig(rate_per_second=1000, burst=5)

    def __init__(self, every: int, retry_after: float | None) -> None:
        super().__init__()
        self.every, self.retry_after, self.calls = every, retry_after, 0

    async def send(self, message):
        self.calls += 1
        if self.calls % self.every == 0:
            raise SendError(
                ErrorKind.RETRYABLE,
                "http_429",
                "throttled",
                self.retry_after,
                provider_wide=True,
                throttled=True,
            )
        return await super().send(message)

    def classify(self, error):
        return error


class Noting:
    """A cooldown that notes what it was asked (and pauses nobody)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def start(self, floor=None):
        self.calls.append(("start", floor))
        return 0.01  # a short cooldown, really held by the lane

    def pause(self, seconds):
        self.calls.append(("pause", seconds))
        return 0.0

    def recovered(self):
        self.calls.append(("recovered", None))

    def left(self):
        return 0.0

    def wait(self):
        return 0.0


def test_throttles_lower_the_rate_pause_only_when_isolated_and_never_double(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    provider = Throttling(every=4, retry_after=0.02)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    cooldown = runtime._cooldowns["sandbox"] = Noting()
    ticks = iter(range(10**6))  # a clock moving a millisecond each time it is read
    bucket = LocalBucket(1000, 5, clock=lambda: next(ticks) / 1000)
    runtime._buckets["rate:sandbox"] = bucket
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20  # every one, in the end
    assert attempts(engine) == {1}  # throttled sends are not the message's fault
    assert provider.calls == 26  # 20 sent, and the 6 throttled ones again
    # The first throttle found the rate at its agreed value: a pause as asked. The next
    # ones came in the same window: counted for the rate, no pause, never a cooldown.
    assert cooldown.calls == [("pause", 0.02)]
    # Counted for the rate: the first cut it at once (by one in a second's worth, since
    # recovered), the five since wait for the next cut, a second after it.
    assert bucket._throttled == 5


def test_an_outage_starts_a_cooldown_and_the_first_success_after_it_ends_the_streak(
    engine, tmp_path
):
    runtime_with_campaign(engine, tmp_path)
    from tests.worker.test_sending import Failing

    down = SendError(ErrorKind.RETRYABLE, "http_503", "gateway error", provider_wide=True)
    provider = Failing(down, times=1)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    cooldown = runtime._cooldowns["sandbox"] = Noting()
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    # One recovery, told by the first request that left after the cooldown ended.
    assert cooldown.calls == [("start", None), ("recovered", None)]


def test_without_an_agreed_rate_each_throttle_pauses_as_asked(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    provider = Throttling(every=10, retry_after=None)
    provider.config = SandboxConfig()
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    cooldown = runtime._cooldowns["sandbox"] = Noting()
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert cooldown.calls == [("pause", 1.0), ("pause", 1.0)]  # a second each, not doubled
