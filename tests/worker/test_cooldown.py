"""The provider-wide cooldown, in this process and shared through real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.sending.cooldown import LocalCooldown, RedisCooldown


class Clock:
    """The module's ``time`` for a test: ``monotonic`` reads ``now``, ``sleep`` moves it.
    A 20 ms cooldown on the real clock could end between two lines of a busy machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_cooldown_doubles_when_failures_follow_each_other(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("worker.sending.cooldown.time", clock)
    cooldown = LocalCooldown(base=0.02, cap=1)
    first = cooldown.start()
    assert 0.015 <= first <= 0.025
    clock.now += 0.005
    assert cooldown.start() == pytest.approx(first - 0.005)  # the same outage: no stacking
    assert cooldown.wait() == pytest.approx(first - 0.005) and cooldown.left() == 0
    clock.now += 1  # soon after (within FORGET_AFTER)
    assert 0.03 <= cooldown.start() <= 0.05  # the next one: twice as long


def test_retry_after_is_a_floor():
    assert LocalCooldown(base=0.01).start(floor=3) == 3


@pytest.mark.redis
def test_every_worker_sees_one_workers_cooldown(redis_namespace):
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_namespace}:cooldown:x"
    one, other = RedisCooldown(client, key, poll=0), RedisCooldown(client, key, poll=0)
    assert other.left() == 0
    # Redis keeps the time (its TIME): each bound allows what really passed, measured,
    # however slow the machine.
    began = time.monotonic()
    assert one.start(floor=60) == pytest.approx(60, abs=0.01)
    seen_at = time.monotonic()
    seen = other.left()
    assert 60 - (time.monotonic() - began) - 0.01 <= seen <= 60  # the same cooldown
    joined = other.start()  # joins it, does not start one of its own (about 1 s)
    assert seen - (time.monotonic() - seen_at) - 0.01 <= joined <= seen + 0.001
