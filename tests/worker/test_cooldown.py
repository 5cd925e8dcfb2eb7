"""The provider-wide cooldown, in this process and shared through real Redis."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.cooldown import LocalCooldown, RedisCooldown


def test_a_cooldown_doubles_when_failures_follow_each_other():
    cooldown = LocalCooldown(base=0.02, cap=1)
    first = cooldown.start()
    assert 0.015 <= first <= 0.025
    assert cooldown.start() == pytest.approx(first, abs=0.005)  # the same outage: no stacking
    assert cooldown.wait() > 0 and cooldown.left() == 0
    assert 0.03 <= cooldown.start() <= 0.05  # the next one, soon after: twice as long


def test_retry_after_is_a_floor():
    assert LocalCooldown(base=0.01).start(floor=3) == 3


@pytest.mark.redis
def test_every_worker_sees_one_workers_cooldown(redis_namespace):
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_namespace}:cooldown:x"
    one, other = RedisCooldown(client, key, poll=0), RedisCooldown(client, key, poll=0)
    assert other.left() == 0
    assert one.start(floor=2) == pytest.approx(2, abs=0.01)
    assert 1.9 < other.left() <= 2
    assert other.start() == pytest.approx(other.left(), abs=0.05)  # joins, does not restart
