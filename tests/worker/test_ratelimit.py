"""The provider's token bucket, in this process and shared through real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.ratelimit import Both, LocalBucket, RedisBucket


class Clock:
    """A clock that only moves when the bucket sleeps: rate tests without real time."""

    def __init__(self):
        self.now = 0.0
        self.grants: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_local_bucket_never_exceeds_rate_plus_burst_in_any_window():
    clock = Clock()
    bucket = LocalBucket(rate=50, burst=10, clock=clock.time, sleep=clock.sleep)
    for _ in range(500):
        bucket.acquire()
        clock.grants.append(clock.now)
    assert clock.now == pytest.approx((500 - 10) / 50)  # the burst, then exactly the rate
    for start in clock.grants:
        in_window = sum(1 for g in clock.grants if start <= g < start + 1)
        assert in_window <= 50 + 10


def test_parts_take_several_tokens_and_may_exceed_the_burst():
    clock = Clock()
    bucket = LocalBucket(rate=10, burst=3, clock=clock.time, sleep=clock.sleep)
    assert bucket.acquire(3) == 0
    waited = bucket.acquire(5)  # larger than the bucket: taken in pieces, never stuck
    assert waited == pytest.approx(0.5)


def test_the_local_bucket_is_shared_by_threads():
    bucket = LocalBucket(rate=200, burst=5)
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [bucket.acquire() for _ in range(25)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= (100 - 5) / 200 * 0.98  # cannot be faster than the rate


def test_a_group_takes_what_is_there_and_gives_back_what_it_cannot_use():
    clock = Clock()
    bucket = LocalBucket(rate=10, burst=5, clock=clock.time, sleep=clock.sleep)
    assert bucket.take(8) == (5, 0.0)  # the burst is there: all of it, no wait
    granted, waited = bucket.take(8, least=2)  # nothing left: wait for two, take two
    assert (granted, waited) == (2, pytest.approx(0.2))
    bucket.give_back(2)
    assert bucket.take(8) == (2, 0.0)
    bucket.give_back(50)
    assert bucket.take(8) == (5, 0.0)  # never more than the burst


def test_a_senders_own_rate_holds_within_its_providers():
    clock = Clock()
    provider = LocalBucket(rate=1, burst=10, clock=clock.time, sleep=clock.sleep)
    sender = LocalBucket(rate=10, burst=2, clock=clock.time, sleep=clock.sleep)
    both = Both(sender, provider)
    assert both.take(50) == (2, 0.0)  # the sender's burst is the smaller
    granted, waited = both.take(50)
    assert granted == 1 and waited == pytest.approx(0.1)  # then the sender's rate
    # Both buckets were charged: another sender on the provider finds 7 of its 10.
    assert provider.take(50)[0] == 7


@pytest.mark.redis
def test_the_redis_bucket_takes_and_gives_back_like_the_local_one(redis_namespace):
    client = redis.Redis.from_url(REDIS_URL)
    bucket = RedisBucket(client, f"{redis_namespace}:rate:x", rate=0.5, burst=5)
    assert bucket.take(8)[0] == 5
    bucket.give_back(3)
    assert bucket.take(8)[0] == 3  # at 0.5 token/s, nothing refilled meanwhile
    bucket.give_back(50)
    assert bucket.take(8)[0] == 5


@pytest.mark.redis
def test_processes_share_one_bucket_in_redis(redis_namespace):
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_namespace}:rate:sandbox"
    # Two "processes" (two buckets on one key) each want 60 tokens at 100/s, burst 10.
    first, second = (RedisBucket(client, key, rate=100, burst=10) for _ in range(2))
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda b=b: [b.acquire() for _ in range(60)])
        for b in (first, second)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # 120 tokens from one bucket of 10 refilled at 100/s take at least 1.1 s together;
    # with a bucket each, they would take 0.5 s.
    assert elapsed >= (120 - 10) / 100 * 0.95
    state = client.hgetall(key)
    assert float(state[b"tokens"]) < 10


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
            runtime.limiter("sandbox", s) for s in ("NinhThuan", "NinhThuan", "HCM")
        )
        assert isinstance(one, Both) and one.second is other.second  # one provider bucket
        assert one.first is again.first and one.first is not other.first  # a bucket per sender
        assert runtime.limiter("sandbox") is one.second  # without a sender: the provider's
    finally:
        runtime.close()
