"""The provider's token bucket (in this process, and as the Lua script in real Redis),
its adaptive rate, and the gate that spends tokens only for requests leaving now."""

from __future__ import annotations

import asyncio
import itertools
from typing import ClassVar

import pytest
import redis.asyncio

from tests.conftest import REDIS_URL
from worker.sending.gate import Gate
from worker.sending.ratelimit import Adaptation, Both, LocalBucket, RedisBucket, default_burst


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drain(bucket: LocalBucket, clock: Clock, wanted: int, least: int = 1) -> list[float]:
    """Take ``wanted`` tokens one ask at a time, moving the clock by each wait: the
    times at which tokens were granted."""
    grants: list[float] = []
    while len(grants) < wanted:
        granted, wait = bucket.take_now(wanted - len(grants), least)
        grants += [clock.now] * granted
        clock.now += wait
    return grants


def busiest(times: list[float], width: float = 1.0 - 1e-9) -> int:
    """The most grants in any span of ``width`` (a second, less float noise)."""
    return max(sum(1 for t in times if start <= t < start + width) for start in times)


def test_the_bucket_never_grants_more_than_rate_plus_burst_in_any_second():
    clock = Clock()
    bucket = LocalBucket(rate=50, burst=10, clock=clock)
    grants = drain(bucket, clock, 500)
    assert grants[-1] == pytest.approx(500 / 50)  # empty at first, then exactly the rate
    assert busiest(grants) <= 50
    clock.now += 60  # idle: full
    grants = drain(bucket, clock, 500)
    assert 50 < busiest(grants) <= 50 + 10  # the burst, then the rate


def test_after_an_idle_spell_the_bucket_holds_no_more_than_its_burst():
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    drain(bucket, clock, 50)
    clock.now += 3600  # an hour without a send: still only the burst at once
    assert bucket.take_now(1000) == (5, 0.0)


def test_a_group_takes_what_is_there_and_tokens_given_back_return():
    clock = Clock()
    bucket = LocalBucket(rate=10, burst=5, clock=clock)
    assert bucket.take_now(8) == (0, pytest.approx(0.1))  # a new bucket starts empty
    clock.now += 1
    assert bucket.take_now(8) == (5, 0.0)
    granted, wait = bucket.take_now(8, least=2)  # nothing left: how long until two
    assert (granted, wait) == (0, pytest.approx(0.2))
    asyncio.run(bucket.give_back(2))
    assert bucket.take_now(8) == (2, 0.0)
    asyncio.run(bucket.give_back(50))
    assert bucket.take_now(8) == (5, 0.0)  # never more than the burst


def test_the_default_burst_is_a_twentieth_of_the_rate():
    assert [default_burst(r) for r in (1, 20, 100, 500, 1000)] == [1, 1, 5, 25, 50]


def test_a_senders_own_rate_holds_within_its_providers():
    clock = Clock()
    provider = LocalBucket(rate=1, burst=10, clock=clock)
    sender = LocalBucket(rate=10, burst=2, clock=clock)
    clock.now += 10  # both full
    both = Both(sender, provider)
    assert asyncio.run(both.try_take(50)) == (2, 0.0)  # the sender's burst is the smaller
    assert asyncio.run(both.try_take(50)) == (0, pytest.approx(0.1))  # then its rate
    clock.now += 0.1
    assert asyncio.run(both.try_take(50))[0] == 1
    # Both buckets were charged: another sender on the provider finds 7 of its 10.
    assert provider.take_now(50)[0] == 7


def test_throttling_lowers_the_rate_by_the_share_throttled_and_it_climbs_back():
    clock = Clock()
    bucket = LocalBucket(rate=200, burst=10, adaptation=Adaptation(recover=0.02), clock=clock)
    drain(bucket, clock, 2000)  # ten seconds at the agreed rate
    assert bucket.throttled_now() is True  # the first, at the agreed rate: isolated
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(1 - 1 / 200, abs=0.002)  # one in a second's worth
    for _ in range(99):  # then half of what goes out in the next second is refused
        assert bucket.throttled_now() is False
        clock.now += 0.005
        bucket.take_now(1)
        clock.now += 0.005
    clock.now += 0.01
    bucket.take_now(1)  # a second since the last cut: the next one
    assert bucket.factor == pytest.approx(0.5, abs=0.06)
    clock.now += 10  # ten quiet seconds: 20 % of the agreed rate back
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(0.7, abs=0.06)
    clock.now += 60
    bucket.take_now(1)
    assert bucket.factor == 1.0  # never above the agreed rate


def test_an_isolated_throttle_pauses_the_bucket_as_long_as_asked():
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    drain(bucket, clock, 300)
    assert bucket.throttled_now(1, pause=2.0) is True
    assert bucket.take_now(5) == (0, pytest.approx(2.0))  # nothing for anyone meanwhile
    assert bucket.throttled_now(1, pause=2.0) is False  # the same episode: no second pause
    clock.now += 2.0
    assert bucket.take_now(5) == (5, 0.0)  # then the burst, as after any quiet spell


def test_a_throttle_after_a_pause_is_not_taken_for_everything_refused():
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    drain(bucket, clock, 300)
    clock.now += 30  # nothing sent for half a minute
    bucket.throttled_now()
    bucket.take_now(1)
    assert bucket.factor > 0.98  # one throttle, measured against a second at the rate


def test_a_rare_throttle_barely_slows_and_the_rate_never_falls_below_its_floor():
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, adaptation=Adaptation(floor=0.1), clock=clock)
    drain(bucket, clock, 300)
    bucket.throttled_now()  # one in 300
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(0.99, abs=0.003)
    for _ in range(40):  # then everything refused, second after second
        drain(bucket, clock, 3)
        for _ in range(50):
            bucket.throttled_now()
        clock.now += 1
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(0.1, abs=0.021)


def test_the_gate_asks_only_for_senders_waiting_and_shares_one_call():
    """Tokens are never taken for later: each call asks for exactly the senders waiting
    at that moment, and everything granted is handed to them in the same turn."""
    clock = Clock()

    class Recording(LocalBucket):
        asks: ClassVar[list[int]] = []

        async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
            self.asks.append(most)
            return self.take_now(most, least)

    bucket = Recording(rate=1000, burst=8, clock=clock)
    clock.now += 1  # full
    gate = Gate(bucket)

    async def run() -> None:
        await asyncio.gather(*(gate.through() for _ in range(5)))

    asyncio.run(run())
    assert bucket.asks[-1] == 5  # five senders, one call, five tokens
    assert bucket.take_now(100)[0] == 3  # the other three stayed in the bucket


def test_the_gate_pays_a_message_dearer_than_the_burst_in_pieces():
    class Noting(LocalBucket):
        """Notes each grant."""

        grants: ClassVar[list[int]] = []

        def take_now(self, most: int, least: int = 1) -> tuple[int, float]:
            granted, wait = super().take_now(most, least)
            self.grants.append(granted)
            return granted, wait

    ticks = itertools.count()  # a clock moving a millisecond (a token) each time it is read
    bucket = Noting(rate=1000, burst=3, clock=lambda: next(ticks) / 1000)
    gate = Gate(bucket)
    asyncio.run(asyncio.wait_for(gate.through(7), timeout=60))  # the timeout bounds a hang
    assert [g for g in bucket.grants if g] == [3, 3, 1]  # never stuck waiting for 7 at once


def test_a_bucket_that_fails_fails_every_waiting_sender():
    class Away:
        rate, burst = 10.0, 5

        async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
            raise ConnectionError("redis away")

    gate = Gate(Away())  # type: ignore[arg-type]

    async def run() -> list[object]:
        return await asyncio.gather(*(gate.through() for _ in range(3)), return_exceptions=True)

    assert [type(r) for r in asyncio.run(run())] == [ConnectionError] * 3


# The script in Redis and LocalBucket must agree: the same asks at the same moments give
# the same grants, waits and rate factors (the script takes "now" from the test).
ASKS = [
    ("take", 0.000, 8, 1),
    ("take", 0.500, 8, 1),
    ("take", 0.500, 8, 2),
    ("throttled", 0.510, 1, 300),  # isolated: a pause of 300 ms
    ("take", 0.600, 8, 1),  # paused
    ("throttled", 0.620, 1, 300),
    ("take", 0.900, 8, 1),
    ("take", 0.500, 8, 1),
    ("take", 1.100, 50, 1),
    ("take", 1.200, 50, 3),
    ("back", 1.300, 4, 0),
    ("take", 1.300, 50, 1),
    ("throttled", 1.400, 2, 0),
    ("take", 2.500, 50, 1),
    ("take", 30.0, 50, 1),
]


@pytest.mark.redis
def test_the_redis_script_and_the_local_bucket_agree(redis_namespace):
    clock = Clock()
    local = LocalBucket(rate=40, burst=6, clock=clock)

    async def run() -> list[tuple]:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        shared = RedisBucket(
            client, f"{redis_namespace}:rate:x", 40, 6, clock=lambda: round(clock.now * 1000)
        )
        seen = []
        for op, at, amount, least in ASKS:
            clock.now = at
            if op == "take":
                here, there = (
                    await local.try_take(amount, least),
                    await shared.try_take(amount, least),
                )
                assert here[0] == there[0], (op, at)
                assert here[1] == pytest.approx(there[1], abs=0.0015), (op, at)
            elif op == "back":
                await local.give_back(amount)
                await shared.give_back(amount)
            else:
                pause = least / 1000
                isolated = await local.throttled(amount, pause)
                assert isolated == await shared.throttled(amount, pause), (op, at)
            assert local.factor == pytest.approx(shared.factor, abs=1e-5), (op, at)
            seen.append(local.factor)
        await client.aclose()
        return seen

    factors = asyncio.run(run())
    assert min(factors) < 1.0  # the sequence did exercise the adaptation


@pytest.mark.redis
def test_processes_share_one_bucket_in_redis(redis_namespace):
    """Two processes' buckets on one key, asked in turns by the server's clock: together
    they get what one bucket grants, not twice as much."""

    async def run() -> int:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        key = f"{redis_namespace}:rate:sandbox"
        first, second = (RedisBucket(client, key, rate=0.001, burst=10) for _ in range(2))
        granted = 0
        for bucket in itertools.islice(itertools.cycle((first, second)), 20):
            granted += (await bucket.try_take(3))[0]
        await client.aclose()
        return granted

    assert asyncio.run(run()) == 0  # a new bucket starts empty; a token in 1,000 s


def test_each_sender_gets_its_own_bucket_within_the_providers(tmp_path):
    from worker.runtime import Runtime
    from worker.settings import Settings

    settings = Settings(
        var_dir=tmp_path,
        providers={
            "sandbox": {"type": "sandbox", "rate_per_second": 100, "sender_rate_per_second": 5}
        },
    )
    runtime = Runtime(settings)
    try:
        one, again, other = (
            runtime.bucket("sandbox", s) for s in ("NinhThuan", "NinhThuan", "HCM")
        )
        assert isinstance(one, Both) and one.second is other.second  # one provider bucket
        assert one.first is again.first and one.first is not other.first  # a bucket per sender
        assert runtime.bucket("sandbox") is one.second  # without a sender: the provider's
        assert one.second.burst == 5 and one.first.burst == 1  # the default bursts
        assert runtime.gate("sandbox", "HCM") is runtime.gate("sandbox", "HCM")
    finally:
        runtime.close()


def test_the_bucket_aims_the_headroom_under_the_agreed_rate(tmp_path):
    from worker.runtime import Runtime
    from worker.settings import Settings

    providers = {"sandbox": {"type": "sandbox", "rate_per_second": 200}}
    for headroom, rate in ((None, 190.0), (0.1, 180.0), (0.0, 200.0)):
        extra = {} if headroom is None else {"rate_headroom": headroom}
        runtime = Runtime(Settings(var_dir=tmp_path, providers=providers, **extra))
        try:
            assert runtime.bucket("sandbox").rate == pytest.approx(rate)
        finally:
            runtime.close()
