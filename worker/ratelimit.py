"""Provider throughput: a token bucket shared by every worker on every machine.

A carrier agrees a rate with each brandname (messages or parts per second) and may cut
off one that exceeds it. Each provider instance therefore has one bucket holding at most
``burst`` tokens and refilled at ``rate`` per second; a send takes tokens first and waits
for them when there are none. Waiting is a sleep inside the job, never an exception, so
it burns no dramatiq retry and dead-letters nothing (dramatiq's own limiters raise, see
../shared/reference/dramatiq-notes.md).

With Redis the bucket is one Lua script, atomic, timed by the Redis server's clock (no
skew between machines); a process takes tokens in small blocks and hands them to its
threads, to spare round trips, and drops what it could not use within the time the
block stands for (so old tokens never add to a later burst). Embedded, the same bucket
lives in this process. Over any interval of T seconds, at most ``burst + rate * T``
tokens are granted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

#: Refill arithmetic in floating point can land a hair under a whole token: count it.
_EPSILON = 1e-9
#: Tokens asked of Redis at a time: a round trip per ten messages, not per message.
BLOCK = 10

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, tokens wanted at most.
# Returns {granted, milliseconds to wait before asking again when none were granted}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local granted = math.min(want, math.floor(tokens + 1e-9))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
local wait = 0
if granted == 0 then wait = math.ceil((1 - tokens) * 1000 / rate) end
return {granted, wait}
"""


class Limiter(Protocol):
    def acquire(self, tokens: int = 1) -> float:
        """Block until ``tokens`` are granted; returns the seconds spent waiting."""
        ...


class Unlimited:
    """A provider with no agreed rate."""

    def acquire(self, tokens: int = 1) -> float:
        return 0.0


class LocalBucket:
    """The bucket in this process (embedded mode), thread-safe.

    Parameters:
        rate: tokens per second.
        burst: the most tokens the bucket holds (what may go out at once after a pause).
        clock, sleep: injectable for tests; default the monotonic clock and time.sleep.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def _take(self, wanted: int) -> tuple[int, float]:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            granted = min(wanted, int(self._tokens + _EPSILON))
            self._tokens -= granted
            wait = 0.0 if granted else max(1 - self._tokens, _EPSILON) / self.rate
            return granted, wait

    def acquire(self, tokens: int = 1) -> float:
        waited, needed = 0.0, tokens
        while needed:
            granted, wait = self._take(min(needed, self.burst))
            needed -= granted
            if needed:
                self._sleep(wait)
                waited += wait
        return waited


class RedisBucket:
    """The bucket in Redis, shared by every process; tokens fetched in blocks."""

    def __init__(
        self, client: redis.Redis, key: str, rate: float, burst: int, block: int = BLOCK
    ) -> None:
        self.rate, self.burst, self.key = rate, burst, key
        self._block = max(1, min(block, burst))
        self._script = client.register_script(_TAKE)
        self._spare = 0  # tokens this process holds for its threads …
        self._spare_until = 0.0  # … until then: an old token spent late could make a burst
        self._lifetime = self._block / rate
        self._lock = threading.Lock()

    def acquire(self, tokens: int = 1) -> float:
        waited, needed = 0.0, tokens
        while needed:
            with self._lock:
                if self._spare and time.monotonic() < self._spare_until:
                    used = min(self._spare, needed)
                    self._spare -= used
                    needed -= used
                    continue
                ask = max(self._block, min(needed, self.burst))
                granted, wait_ms = (
                    int(v) for v in self._script(keys=[self.key], args=[self.rate, self.burst, ask])
                )
                used = min(granted, needed)
                self._spare, self._spare_until = granted - used, time.monotonic() + self._lifetime
                needed -= used
            if needed and not granted:
                time.sleep(wait_ms / 1000)
                waited += wait_ms / 1000
        return waited
