"""The provider-wide cooldown, in this process and shared through real Redis, on a clock
the test moves: a span is what the rule says, never what a busy machine let pass.

The jitter (a quarter either way) is left random: each expected span is a range, and the
ranges of successive doublings (0.75–1.25 s, 1.5–2.5 s, 3–5 s for a base of 1 s) never
overlap, so a span tells which step of the streak it is."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.sending.cooldown import FORGET_AFTER, LocalCooldown, RedisCooldown

FIRST, SECOND, THIRD = (0.75, 1.25), (1.5, 2.5), (3.0, 5.0)  # base 1 s, with jitter


class Clock:
    """Seconds that move only when the test says, or when a cooldown sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def probe(self) -> None:
        """After a wait, the probe's request: a few milliseconds (Redis counts whole
        ones, so a wait may end less than one before the cooldown does)."""
        self.now += 0.005


def within(span: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 0.002 <= span <= bounds[1] + 0.002  # Redis counts whole ms


def local(clock: Clock, **limits: float) -> LocalCooldown:
    return LocalCooldown(clock=clock, sleep=clock.sleep, **limits)


def shared(clock: Clock, key: str, **limits: float) -> RedisCooldown:
    """One worker's view of the cooldown in Redis, asking Redis at every read."""
    client = redis.Redis.from_url(REDIS_URL)
    return RedisCooldown(client, key, poll=0, clock=clock, sleep=clock.sleep, **limits)


def test_a_cooldown_doubles_when_failures_follow_each_other():
    clock = Clock()
    cooldown = local(clock)
    first = cooldown.start()
    assert within(first, FIRST)
    clock.now += 0.5
    assert cooldown.start() == pytest.approx(first - 0.5)  # the same outage: no stacking
    assert cooldown.wait() == pytest.approx(first - 0.5) and cooldown.left() == 0
    clock.now += 1  # the probe failed soon after (within FORGET_AFTER)
    assert within(cooldown.start(), SECOND)
    cooldown.wait()
    assert within(cooldown.start(), THIRD)


@pytest.mark.parametrize("where", ["here", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_cooldown_never_exceeds_its_cap(where, request):
    clock = Clock()
    if where == "here":
        cooldown = local(clock, cap=2)
    else:
        key = f"{request.getfixturevalue('redis_namespace')}:cooldown:x"
        cooldown = shared(clock, key, cap=2)
    spans = []
    for _ in range(4):
        spans.append(cooldown.start())
        cooldown.wait()
        clock.probe()
    assert within(spans[0], FIRST) and all(within(s, SECOND) for s in spans[1:])


def test_a_successful_probe_or_a_quiet_spell_starts_the_next_outage_from_base():
    clock = Clock()
    cooldown = local(clock)
    cooldown.start()
    cooldown.wait()
    cooldown.recovered()
    assert within(cooldown.start(), FIRST)
    cooldown.wait()
    clock.now += FORGET_AFTER - 1  # quiet, but not for long enough to forget
    assert within(cooldown.start(), SECOND)
    cooldown.wait()
    clock.now += FORGET_AFTER + 1
    assert within(cooldown.start(), FIRST)


def test_retry_after_is_a_floor():
    clock = Clock()
    assert local(clock).start(floor=3) == 3
    clock.now += 10
    assert within(local(clock).start(floor=0.1), FIRST)  # a floor never shortens it


def test_a_pause_lasts_as_asked_never_doubles_and_leaves_the_streak_alone():
    clock = Clock()
    cooldown = local(clock)
    assert cooldown.pause(2) == 2
    assert cooldown.wait() == 2
    assert cooldown.pause(2) == 2  # a second throttle: as long as asked again, not 4 s
    clock.now += 1
    assert cooldown.pause(0.5) == 1  # the longer one running stays
    clock.now += 1
    assert cooldown.left() == 0
    assert within(cooldown.start(), FIRST)  # the outage after the pauses: from base


@pytest.mark.redis
def test_every_worker_sees_one_workers_cooldown(redis_namespace):
    clock = Clock()
    key = f"{redis_namespace}:cooldown:x"
    one, other = shared(clock, key), shared(clock, key)
    assert other.left() == 0
    assert one.start(floor=60) == 60
    clock.now += 5
    assert other.left() == 55  # the same cooldown, from another worker
    assert other.start() == 55  # joins it, does not start one of its own
    assert other.wait() == 55 and one.left() == 0


@pytest.mark.redis
def test_in_redis_a_cooldown_doubles_and_a_recovery_or_a_quiet_spell_resets_it(
    redis_namespace,
):
    clock = Clock()
    key = f"{redis_namespace}:cooldown:x"
    one, other = shared(clock, key), shared(clock, key)
    first = one.start()
    assert within(first, FIRST)
    assert other.wait() == pytest.approx(first, abs=0.002)
    clock.probe()
    assert within(other.start(), SECOND)  # the probe failed: twice as long, whoever sent it
    other.wait()
    clock.probe()
    assert within(one.start(), THIRD)
    one.wait()
    clock.probe()
    other.recovered()  # a probe went through: seen by every worker
    assert within(one.start(), FIRST)
    one.wait()
    clock.now += FORGET_AFTER - 1
    assert within(one.start(), SECOND)
    one.wait()
    clock.now += FORGET_AFTER + 1
    assert within(other.start(), FIRST)


@pytest.mark.redis
def test_in_redis_a_pause_lasts_as_asked_and_leaves_the_streak_alone(redis_namespace):
    clock = Clock()
    key = f"{redis_namespace}:cooldown:x"
    one, other = shared(clock, key), shared(clock, key)
    assert one.pause(2) == 2
    clock.now += 1
    assert other.pause(0.5) == 1  # the longer one running stays
    assert other.pause(3) == 3  # a longer one asked: as long as asked, not doubled
    assert one.wait() == 3 and other.left() == 0
    assert within(one.start(), FIRST)  # the outage after the pauses: from base
