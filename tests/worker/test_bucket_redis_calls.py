"""The bucket in real Redis (``RedisBucket``, the Lua script), asked the way the gate and
the lane ask it, with "now" from a clock the test moves (milliseconds, as the script
counts): tokens given back, throttles with and without a ``Retry-After``, and the rate
factor it reports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio

from tests.conftest import REDIS_URL
from worker.sending.ratelimit import RedisBucket

pytestmark = pytest.mark.redis


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def ms(self) -> int:
        return round(self.now * 1000)


@pytest.fixture
def shared(redis_namespace) -> Iterator[tuple[Clock, RedisBucket, asyncio.AbstractEventLoop]]:
    """(clock, a bucket of 40 a second and a burst of 6 in Redis, a loop to ask it on)."""
    clock, loop = Clock(), asyncio.new_event_loop()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    bucket = RedisBucket(client, f"{redis_namespace}:rate:calls", 40, 6, clock=clock.ms)
    try:
        yield clock, bucket, loop
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_giving_back_nothing_changes_nothing(shared):
    """Not even the bucket's start: it still starts empty at its first real ask."""
    clock, bucket, loop = shared
    loop.run_until_complete(bucket.give_back(0))
    clock.now = 1.0
    assert loop.run_until_complete(bucket.try_take(6)) == (0, 0.025)


def test_a_single_token_given_back_returns(shared):
    clock, bucket, loop = shared
    loop.run_until_complete(bucket.try_take(6))  # the bucket starts, empty
    clock.now = 1.0
    assert loop.run_until_complete(bucket.try_take(6)) == (6, 0.0)
    loop.run_until_complete(bucket.give_back(1))
    assert loop.run_until_complete(bucket.try_take(6)) == (1, 0.0)


def test_the_agreed_rate_is_reported_as_a_factor_of_exactly_one(shared):
    _, bucket, loop = shared
    assert bucket.factor == 1.0  # before its first ask
    loop.run_until_complete(bucket.try_take(6))
    assert bucket.factor == 1.0


def test_an_isolated_throttle_pauses_the_bucket_to_the_millisecond_asked(shared):
    clock, bucket, loop = shared
    loop.run_until_complete(bucket.try_take(6))
    clock.now = 1.0
    assert loop.run_until_complete(bucket.throttled(1, 2.0)) is True
    assert loop.run_until_complete(bucket.try_take(6)) == (0, 2.0)


def test_a_throttle_without_its_options_counts_one_token_and_pauses_nothing(shared):
    """One token of a window's 40 (the six granted, decayed, are fewer): the rate keeps
    39/40; without a ``Retry-After`` nothing is paused, so half a second later the
    burst is there again."""
    clock, bucket, loop = shared
    loop.run_until_complete(bucket.try_take(6))
    clock.now = 1.0
    assert loop.run_until_complete(bucket.try_take(6)) == (6, 0.0)
    assert loop.run_until_complete(bucket.throttled()) is True
    clock.now = 1.5
    assert loop.run_until_complete(bucket.try_take(6)) == (6, 0.0)
    assert bucket.factor == pytest.approx(1 - 1 / 40, abs=2e-6)  # the script keeps 1e-6
