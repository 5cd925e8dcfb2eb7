"""The token bucket after an idle spell: it holds at most its burst, however long it sat.

A carrier counts what arrives in each second. A bucket that kept refilling while nobody
sent (a campaign paused overnight, a quiet hour between arrivals) would hand out
``idle × rate`` tokens at once when sending starts again, and the provider would see
thousands of requests in one second. Time here is a clock the test moves (never a sleep):
the in-process bucket (``LocalBucket``, embedded mode) and the same arithmetic as the
Lua script in Redis, which takes "now" from the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio

from tests.conftest import REDIS_URL
from worker.sending.gate import Gate
from worker.sending.ratelimit import LocalBucket, RedisBucket

RATE, BURST = 100.0, 5  # a token every 10 ms; five at most at once


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


Take = Callable[[int], tuple[int, float]]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def bucket(request) -> Iterator[tuple[Clock, Take]]:
    """(clock, take): a bucket of ``RATE`` and ``BURST`` on the test's clock, in this
    process or in Redis; ``take(n)`` asks for up to ``n`` tokens now."""
    clock = Clock()
    if request.param == "local":
        local = LocalBucket(RATE, BURST, clock=clock)
        yield clock, local.take_now
        return
    namespace = request.getfixturevalue("redis_namespace")
    loop = asyncio.new_event_loop()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    shared = RedisBucket(
        client, f"{namespace}:rate:idle", RATE, BURST, clock=lambda: round(clock.now * 1000)
    )

    try:
        yield clock, lambda most: loop.run_until_complete(shared.try_take(most))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


@pytest.mark.parametrize(
    ("idle", "expected", "then_wait"),
    [
        (0.025, 2, 0.005),  # 25 ms at 100/s: 2.5 tokens; the half left is 5 ms of a token
        (0.06, 5, 0.01),  # six tokens' worth: the burst, none left
        (1.0, 5, 0.01),  # a second's worth would be 100
        (3600.0, 5, 0.01),  # an hour's would be 360,000
        (7 * 86400.0, 5, 0.01),  # a week
    ],
)
def test_after_an_idle_spell_the_bucket_grants_at_most_its_burst(bucket, idle, expected, then_wait):
    """Expected by hand: ``min(burst, idle × rate)`` whole tokens from an empty bucket,
    then nothing until the next whole token is due (what is left short of one, at
    1 / rate a token)."""
    clock, take = bucket
    assert take(10_000) == (0, pytest.approx(1 / RATE))  # a new bucket starts empty
    clock.now += idle
    assert take(10_000)[0] == expected
    granted, wait = take(10_000)
    assert granted == 0 and wait == pytest.approx(then_wait, abs=0.0015)


def test_the_second_after_an_idle_spell_holds_burst_plus_rate(bucket):
    """After a week idle, everything granted in the next second to a sender asking every
    millisecond: by hand, the burst at once, then a token every 10 ms (at 10, 20 … 990
    ms: 99), so 104, never a week's worth."""
    clock, take = bucket
    take(10_000)  # in use (a Redis bucket starts at its first call), then idle
    clock.now += 7 * 86400
    start, grants = clock.now, 0
    for ms in range(1000):
        clock.now = start + ms / 1000
        grants += take(10_000)[0]
    assert BURST + RATE - 3 <= grants <= BURST + RATE - 1


def test_senders_at_the_gate_after_an_idle_spell_get_the_burst_and_then_wait():
    """Through the gate the senders use: fifteen senders asking at once after an hour's
    silence are let through five at once; the others wait for the clock, which stands
    still here, so however long the gate polls they stay waiting. Each burst's worth of
    time the clock moves lets the next five through, and no more."""
    clock = Clock()
    grants: list[int] = []

    class Counted(LocalBucket):
        async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
            granted, wait = self.take_now(most, least)
            grants.append(granted)
            return granted, wait

    gate = Gate(Counted(RATE, BURST, clock=clock))
    clock.now += 3600

    async def run() -> None:
        senders = [asyncio.create_task(gate.through()) for _ in range(3 * BURST)]
        await asyncio.wait_for(asyncio.gather(*senders[:BURST]), timeout=60)  # bounds a hang
        assert sum(grants) == BURST and grants[0] == BURST
        assert not any(s.done() for s in senders[BURST:])
        for let_through in (2 * BURST, 3 * BURST):
            clock.now += (BURST + 0.5) / RATE  # five and a half tokens' time: the burst
            await asyncio.wait_for(asyncio.gather(*senders[:let_through]), timeout=60)
            assert sum(grants) == let_through
            assert not any(s.done() for s in senders[let_through:])

    asyncio.run(run())
