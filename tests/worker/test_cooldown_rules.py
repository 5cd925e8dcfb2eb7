"""The cooldown's limits as the runtime builds it (``LocalCooldown()``,
``RedisCooldown(client, key)``: the default cap and poll), its edges (the forgetting
spell, a floor never given), and what one worker learns of another's cooldown and when.

Time is a clock the test moves, and a sleep that moves it; the jitter is pinned at its
middle (a factor of exactly 1), so that every span is known to the millisecond."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import worker.sending.cooldown
from tests.conftest import REDIS_URL
from worker.sending.cooldown import FORGET_AFTER, LocalCooldown, RedisCooldown

#: Spans of an outage that lasts, from a base of 1 s without jitter, up to the 60 s cap.
DOUBLING = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


class Clock:
    """Seconds that move only when the test says, or when a cooldown sleeps."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class MiddleJitter:
    """The module's ``random`` with the jitter at the middle of its range."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return (low + high) / 2

    @staticmethod
    def random() -> float:
        return 0.5


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker.sending.cooldown, "random", MiddleJitter)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


def outage(cooldown: LocalCooldown | RedisCooldown) -> list[float]:
    """The spans of an outage whose every probe fails, one after the other."""
    spans = []
    for _ in DOUBLING:
        spans.append(cooldown.start())
        cooldown.wait()
    return spans


def test_a_lasting_outage_doubles_up_to_a_minute_here():
    clock = Clock()
    assert outage(LocalCooldown(clock=clock, sleep=clock.sleep)) == DOUBLING


@pytest.mark.redis
def test_a_lasting_outage_doubles_up_to_a_minute_in_redis(client, redis_namespace):
    clock = Clock()
    cooldown = RedisCooldown(
        client, f"{redis_namespace}:cooldown:x", clock=clock, sleep=clock.sleep
    )
    assert outage(cooldown) == DOUBLING


def test_a_failure_exactly_forget_after_the_cooldown_ended_still_doubles():
    """Without a later failure *within* ``FORGET_AFTER`` seconds: at the limit, it is within."""
    clock = Clock()
    cooldown = LocalCooldown(clock=clock, sleep=clock.sleep)
    assert cooldown.start() == 1.0
    cooldown.wait()
    clock.now += FORGET_AFTER
    assert cooldown.start() == 2.0
    cooldown.wait()
    clock.now += FORGET_AFTER + 0.001
    assert cooldown.start() == 1.0


@pytest.mark.parametrize("where", ["here", pytest.param("redis", marks=pytest.mark.redis)])
def test_without_a_retry_after_a_short_base_is_not_stretched(where, request):
    clock = Clock()
    if where == "here":
        cooldown = LocalCooldown(base=0.2, clock=clock, sleep=clock.sleep)
    else:
        key = f"{request.getfixturevalue('redis_namespace')}:cooldown:x"
        client = request.getfixturevalue("client")
        cooldown = RedisCooldown(client, key, base=0.2, clock=clock, sleep=clock.sleep)
    assert cooldown.start() == pytest.approx(0.2)
    assert cooldown.start(floor=None) == pytest.approx(0.2)  # the same cooldown, joined


def test_a_new_cooldown_has_nothing_left_whatever_the_clocks_origin():
    """A monotonic clock counts from anywhere, zero included."""
    cooldown = LocalCooldown(clock=lambda: 0.0, sleep=lambda seconds: None)
    assert cooldown.left() == 0.0
    assert cooldown.wait() == 0.0


def test_a_pause_asked_while_waiting_is_waited_out_too_and_counted():
    """A batch waiting out a two-second pause; meanwhile another throttle asks three
    more seconds: the wait goes on, and reports all five."""
    clock = Clock()
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if not asked:
            asked.append(cooldown.pause(3.0))

    cooldown = LocalCooldown(clock=clock, sleep=sleep)
    cooldown.pause(2.0)
    assert cooldown.wait() == 5.0
    assert asked == [3.0] and cooldown.left() == 0.0


@pytest.mark.redis
def test_a_worker_learns_of_anothers_cooldown_within_a_tenth_of_a_second(client, redis_namespace):
    """The runtime's default poll: a worker asks Redis at most every 0.1 s, so for that
    long it may still see none, and no longer."""
    clock = Clock()
    key = f"{redis_namespace}:cooldown:x"
    one = RedisCooldown(client, key, clock=clock, sleep=clock.sleep)
    other = RedisCooldown(client, key, clock=clock, sleep=clock.sleep)
    assert other.left() == 0.0  # asked Redis: nothing
    assert one.start(floor=60) == 60.0
    assert other.left() == 0.0  # within the poll: not asked again
    clock.now += 0.25
    assert other.left() == 59.75


@pytest.mark.redis
def test_a_worker_asks_again_once_a_whole_poll_has_passed(client, redis_namespace):
    clock = Clock(1000.0)
    key = f"{redis_namespace}:cooldown:x"
    one = RedisCooldown(client, key, poll=0.5, clock=clock, sleep=clock.sleep)
    other = RedisCooldown(client, key, poll=0.5, clock=clock, sleep=clock.sleep)
    assert other.left() == 0.0
    one.start(floor=60)
    clock.now = 1000.5
    assert other.left() == 59.5


@pytest.mark.redis
def test_the_worker_that_starts_or_asks_a_pause_sees_it_without_asking_again(
    client, redis_namespace
):
    clock = Clock()
    key = f"{redis_namespace}:cooldown:x"
    one = RedisCooldown(client, key, clock=clock, sleep=clock.sleep)
    assert one.start(floor=30) == 30.0
    assert one.left() == 30.0
    other = RedisCooldown(client, f"{key}:other", clock=clock, sleep=clock.sleep)
    assert other.pause(5.0) == 5.0
    assert other.left() == 5.0


@pytest.mark.redis
def test_on_the_redis_servers_clock_every_worker_sees_one_workers_cooldown(client, redis_namespace):
    """As the runtime builds it (no clock: Redis keeps the time). Only the bounds are
    checked: the real seconds between the calls are not the test's to know."""
    key = f"{redis_namespace}:cooldown:x"
    one, other = RedisCooldown(client, key), RedisCooldown(client, key)
    assert one.start(floor=60) == 60.0
    assert 0.0 < other.left() <= 60.0


class LowestJitter:
    """The module's ``random`` with the jitter at the bottom of its range."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return low

    @staticmethod
    def random() -> float:
        return 0.0


@pytest.mark.parametrize("where", ["here", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_jitter_shortens_a_span_by_a_quarter_at_most(where, request, monkeypatch):
    monkeypatch.setattr(worker.sending.cooldown, "random", LowestJitter)
    clock = Clock()
    if where == "here":
        cooldown = LocalCooldown(base=2.0, clock=clock, sleep=clock.sleep)
    else:
        key = f"{request.getfixturevalue('redis_namespace')}:cooldown:x"
        client = request.getfixturevalue("client")
        cooldown = RedisCooldown(client, key, base=2.0, clock=clock, sleep=clock.sleep)
    assert cooldown.start() == 1.5


@pytest.mark.redis
def test_a_cooldown_of_a_fraction_of_a_millisecond_is_waited_out_whole(client, redis_namespace):
    """Redis truncates a script's number: another worker saw a cooldown ending at
    900.5 ms end at 900 ms, and its probe, failing inside it, joined the old cooldown
    (1 ms left) instead of starting a doubled one."""
    clock = Clock()
    key = f"{redis_namespace}:cooldown:fraction"
    first, other = (
        RedisCooldown(client, key, base=0.9005, clock=clock, sleep=clock.sleep) for _ in "ab"
    )
    assert first.start() == 0.901  # 900.5 ms, said whole
    other.wait()  # learns of it from Redis only
    assert other.start() == pytest.approx(1.801)  # the probe failed after it: doubled
