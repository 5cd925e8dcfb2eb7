"""Provider throughput: a token bucket shared by every worker on every machine.

A carrier agrees a rate with each brandname (messages or parts per second) and may cut
off one that exceeds it. Each provider instance therefore has one bucket holding at most
``burst`` tokens and refilled at ``rate`` per second; a send takes tokens first and waits
for them when there are none. Waiting is a sleep inside the job, never an exception, so
it burns no dramatiq retry and dead-letters nothing (dramatiq's own limiters raise, see
../shared/reference/dramatiq-notes.md).

With Redis the bucket is one Lua script, atomic, timed by the Redis server's clock (no
skew between machines). A batch takes the tokens for a whole group of messages in one
round trip (as many as are there now, at least the first message's), and sends them at
once: a token is never held for later, where it could add to a burst, and what a group
could not use goes back. Embedded, the same bucket lives in this process. Over any
interval of T seconds, at most ``burst + rate * T`` tokens are granted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

#: Refill arithmetic in floating point can land a hair under a whole token: count it.
_EPSILON = 1e-9

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, most wanted, least wanted, given back.
# Returns {granted, milliseconds to wait before asking again when none were granted}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local least = tonumber(ARGV[4])
local back = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + (now - at) * rate / 1000 + back)
local whole = math.floor(tokens + 1e-9)
local granted = 0
local wait = 0
if whole >= least then
  granted = math.min(most, whole)
  tokens = tokens - granted
else
  wait = math.ceil((least - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return {granted, wait}
"""


class Limiter(Protocol):
    def take(self, most: int, least: int = 1) -> tuple[int, float]:
        """Wait until at least ``least`` tokens are there, then take as many as are there,
        up to ``most``. Returns (tokens taken, seconds spent waiting)."""
        ...

    def give_back(self, tokens: int) -> None:
        """Return tokens taken and not used (never above the burst)."""
        ...

    def acquire(self, tokens: int = 1) -> float:
        """Block until ``tokens`` are granted; returns the seconds spent waiting."""
        ...


class _Acquiring:
    """``acquire`` in terms of ``take``: what a single send (a retry) uses."""

    burst: int

    def take(self, most: int, least: int = 1) -> tuple[int, float]:  # pragma: no cover
        raise NotImplementedError

    def acquire(self, tokens: int = 1) -> float:
        waited, needed = 0.0, tokens
        while needed:  # more than the bucket holds (a long message): in pieces
            piece = min(needed, self.burst)
            granted, wait = self.take(piece, piece)
            needed -= granted
            waited += wait
        return waited


class Unlimited:
    """A provider with no agreed rate."""

    def take(self, most: int, least: int = 1) -> tuple[int, float]:
        return most, 0.0

    def give_back(self, tokens: int) -> None:
        pass

    def acquire(self, tokens: int = 1) -> float:
        return 0.0


class LocalBucket(_Acquiring):
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

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, most: int, least: int = 1) -> tuple[int, float]:
        least = min(least, self.burst)
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                whole = int(self._tokens + _EPSILON)
                if whole >= least:
                    granted = min(most, whole)
                    self._tokens -= granted
                    return granted, waited
                wait = max(least - self._tokens, _EPSILON) / self.rate
            self._sleep(wait)
            waited += wait

    def give_back(self, tokens: int) -> None:
        with self._lock:
            self._refill()
            self._tokens = min(self.burst, self._tokens + tokens)


class RedisBucket(_Acquiring):
    """The bucket in Redis, shared by every process: one round trip per group."""

    def __init__(self, client: redis.Redis, key: str, rate: float, burst: int) -> None:
        self.rate, self.burst, self.key = rate, burst, key
        self._script = client.register_script(_TAKE)

    def _call(self, most: int, least: int, back: int = 0) -> tuple[int, int]:
        args = [self.rate, self.burst, most, least, back]
        granted, wait_ms = self._script(keys=[self.key], args=args)
        return int(granted), int(wait_ms)

    def take(self, most: int, least: int = 1) -> tuple[int, float]:
        least = min(least, self.burst)
        waited = 0.0
        while True:
            granted, wait_ms = self._call(most, least)
            if granted:
                return granted, waited
            time.sleep(wait_ms / 1000)
            waited += wait_ms / 1000

    def give_back(self, tokens: int) -> None:
        if tokens > 0:
            self._call(0, 0, back=tokens)


class Both(_Acquiring):
    """Two limits that must both hold (a sender's own rate within its provider's): tokens
    are taken from the first, then as many from the second, and what the second could not
    match goes back to the first."""

    def __init__(self, first: LocalBucket | RedisBucket, second: LocalBucket | RedisBucket) -> None:
        self.first, self.second = first, second
        self.burst = min(first.burst, second.burst)

    def take(self, most: int, least: int = 1) -> tuple[int, float]:
        got, waited = self.first.take(most, least)
        matched, more = self.second.take(got, min(least, got))
        if matched < got:
            self.first.give_back(got - matched)
        return matched, waited + more

    def give_back(self, tokens: int) -> None:
        self.first.give_back(tokens)
        self.second.give_back(tokens)
