"""A provider-wide pause after the provider says it is down, or asks for one.

When a gateway answers 503 or refuses connections, every message sent to it in the next
moments would meet the same answer, and each of those answers would cost the message an
attempt. So the first such answer starts a cooldown for the whole provider instance:
every worker, on every machine, stops handing it messages until the cooldown ends, then
one round of sends probes it again. A cooldown that follows a failed probe is twice as
long (1 s, 2 s, 4 s … up to ``cap``), never shorter than the provider's ``Retry-After``,
with jitter so that machines do not probe in step; a probe that succeeds (``recovered``)
makes the next outage start again from ``base``, however soon it comes.

Throttling (429) is not an outage: the rate adapts to it (``worker.sending.ratelimit``), and an
isolated throttle pauses the provider exactly as long as it asked (``pause``), never
doubling: a provider that throttles one request in 300 with ``Retry-After: 1`` costs a
second per throttle, not minutes.

Messages that met the outage are not charged an attempt (the provider never looked at
them); what bounds them is their validity.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis

#: Without a later failure within this many seconds after a cooldown ends, the next
#: one starts again from ``base``.
FORGET_AFTER = 120.0

# Each script's last argument is "now" in milliseconds: "" (production) for the Redis
# server's clock, one machine's time for every worker; tests pass their own.
_NOW = """
local now = tonumber(ARGV[#ARGV])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS[1] the provider's cooldown hash; ARGV: base s, cap s, floor s (Retry-After), jitter
# (0..1), forget s, now. Returns milliseconds until the cooldown ends (the current one if
# it is still running: concurrent failures of one outage do not stack).
_START = (
    _NOW
    + """
local base, cap, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local jitter, forget = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'until', 'streak')
local ends = tonumber(state[1]) or 0
local streak = tonumber(state[2]) or 0
if now < ends then return math.ceil(ends - now) end
if now - ends > forget * 1000 then streak = 0 end
streak = streak + 1
local span = math.min(cap, base * 2 ^ (streak - 1)) * (0.75 + 0.5 * jitter)
span = math.max(span, floor) * 1000
redis.call('HSET', KEYS[1], 'until', now + span, 'streak', streak)
redis.call('PEXPIRE', KEYS[1], math.ceil(span + forget * 1000))
return math.ceil(span)
"""
)

# KEYS[1]; ARGV: seconds, now. A pause as long as asked (or the cooldown running, if
# longer), leaving the streak alone. Returns milliseconds until it ends.
_PAUSE = (
    _NOW
    + """
local ends = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
local asked = now + math.ceil(tonumber(ARGV[1]) * 1000)
if asked > ends then
  redis.call('HSET', KEYS[1], 'until', asked)
  ends = asked
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ends - now + 600000))
return math.ceil(ends - now)
"""
)

# KEYS[1]; ARGV: now. Returns milliseconds left in the cooldown (0 when none), rounded up:
# Redis truncates a script's number, and a cooldown seen ending up to a millisecond early
# let a probe fail inside it, which then started no cooldown of its own.
_LEFT = (
    _NOW
    + """
local ends = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if now < ends then return math.ceil(ends - now) end
return 0
"""
)


class Cooldown(Protocol):
    def start(self, floor: float | None = None) -> float:
        """Begin (or join) a cooldown after an outage; returns its seconds left."""
        ...

    def pause(self, seconds: float) -> float:
        """Pause the provider ``seconds`` (as it asked), not doubled; returns the seconds
        left (a longer cooldown already running stays)."""
        ...

    def recovered(self) -> None:
        """A send after the last cooldown succeeded: the next outage starts from base."""
        ...

    def left(self) -> float:
        """Seconds until the provider may be called again (0: now)."""
        ...

    def wait(self) -> float:
        """Sleep through the cooldown, if any; returns the seconds slept."""
        ...


class _Waiting:
    _sleep: Callable[[float], None]

    def left(self) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def wait(self) -> float:
        slept = 0.0
        while (left := self.left()) > 0:
            self._sleep(left)
            slept += left
        return slept


class LocalCooldown(_Waiting):
    """The cooldown in this process (embedded mode).

    Parameters:
        base, cap: the first cooldown's length and the longest, in seconds.
        clock: seconds, monotonic; ``sleep``: waits that long. Tests pass a clock of
            their own, that a sleep moves, so that no span depends on a machine's speed.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base, self.cap = base, cap
        self._clock, self._sleep = clock, sleep
        self._until, self._streak = 0.0, 0
        self._lock = threading.Lock()

    def start(self, floor: float | None = None) -> float:
        with self._lock:
            now = self._clock()
            if now < self._until:
                return self._until - now
            if now - self._until > FORGET_AFTER:
                self._streak = 0
            self._streak += 1
            span = min(self.cap, self.base * 2 ** (self._streak - 1))
            span = max(span * random.uniform(0.75, 1.25), floor or 0.0)
            self._until = now + span
            return span

    def pause(self, seconds: float) -> float:
        with self._lock:
            now = self._clock()
            self._until = max(self._until, now + seconds)
            return self._until - now

    def recovered(self) -> None:
        with self._lock:
            self._streak = 0

    def left(self) -> float:
        return max(0.0, self._until - self._clock())


class RedisCooldown(_Waiting):
    """The cooldown in Redis, seen by every worker. ``left`` asks Redis at most every
    ``poll`` seconds (a process learns of a cooldown within that, and pays one round
    trip per poll, not per message).

    Parameters:
        clock: seconds for the scripts' "now" and this process's poll (tests);
            ``None``: the Redis server's clock, and ``time.monotonic`` for the poll.
        sleep: waits that long (``wait``).
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        base: float = 1.0,
        cap: float = 60.0,
        poll=0.1,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base, self.cap, self.key, self.poll = base, cap, key, poll
        self._server_clock, self._sleep = clock, sleep
        self._clock = clock or time.monotonic
        self._start = client.register_script(_START)
        self._left = client.register_script(_LEFT)
        self._pause = client.register_script(_PAUSE)
        self._client = client
        self._known_until, self._asked_at = 0.0, float("-inf")  # pragma: no mutate - asks first
        self._lock = threading.Lock()

    def _now(self) -> int | str:
        """The scripts' "now": "" for the Redis server's own clock."""
        return "" if self._server_clock is None else round(self._server_clock() * 1000)

    def start(self, floor: float | None = None) -> float:
        args = [self.base, self.cap, floor or 0.0, random.random(), FORGET_AFTER, self._now()]
        span = int(self._start(keys=[self.key], args=args)) / 1000
        with self._lock:
            now = self._clock()
            self._known_until, self._asked_at = now + span, now
        return span

    def pause(self, seconds: float) -> float:
        span = int(self._pause(keys=[self.key], args=[seconds, self._now()])) / 1000
        with self._lock:
            now = self._clock()
            self._known_until, self._asked_at = now + span, now
        return span

    def recovered(self) -> None:
        if self._client.exists(self.key):  # (a key made here would never expire)
            self._client.hset(self.key, "streak", 0)

    def left(self) -> float:
        with self._lock:
            now = self._clock()
            if now - self._asked_at >= self.poll:
                left = int(self._left(keys=[self.key], args=[self._now()])) / 1000
                self._known_until, self._asked_at = now + left, now
            return max(0.0, self._known_until - now)
