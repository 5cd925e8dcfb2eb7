"""Provider throughput: one token bucket per provider instance, shared by every worker on
every machine, spent at the moment a request goes out, and slowed down while the
provider throttles.

A carrier agrees a rate with each brandname (messages or parts per second), counts the
requests arriving at its door in each second, and throttles or suspends one that sends
more. So what matters is what the provider *receives*: a bucket holding at most
``burst`` tokens, refilled at ``rate`` per second, grants at most ``burst + rate * T``
tokens in any span of T seconds, and a token must be spent by a request leaving at once.
The bucket is therefore asked only by senders that hold a message and are ready to send
it (``worker.sending.gate``), never for a group queued for later: a token taken early would go
out together with the next grants and the provider would count both.

**The default burst** is a twentieth of a second's worth of the rate, at least one token
(``default_burst``): an agreed TPS is a ceiling per second, not an average, so the
provider sees at most 5 % above it in any sliding second. ``LOA_RATE_HEADROOM`` aims
5 % under the rate, for the jitter between a grant and its arrival (a busy machine, the
network: tens of milliseconds), and a new bucket starts empty rather than full: at the
start of a campaign the first requests of every process pay for their connections and
their first use, arrive late and would bunch with the next grants (measured: 214 in the
first second at a gateway allowing 210, with a full bucket at the start).

**When the provider throttles** (HTTP 429, or a provider's own "too many requests"), the rate
adapts instead of stopping and starting:

- the bucket keeps a decaying sum of the tokens it granted (time constant ``window``,
  1 s: about the last second's worth) and counts the tokens throttled since the rate
  was last cut. At most once per ``window``, those throttles multiply the rate by the
  share that got through, ``1 - throttled / granted`` (granted never counted below a
  ``window`` at the current rate, so a throttle after a quiet spell or a pause is not
  mistaken for "everything refused"): a provider that accepts
  100 of the 196 a second it is sent is sent about 100 a second later on, and one that
  throttles one request in 300 loses a third of a percent;
- without throttles the rate climbs back by ``recover`` of the agreed rate per second
  (2 %: from half the rate to all of it in 25 s), never above the agreed rate and never
  below ``floor`` of it (5 %);
- a throttle that finds the rate at its agreed value and no other throttle since the
  last cut is *isolated*: the bucket then grants nothing, to any process, for as long
  as the provider asked (``Retry-After``) and no longer. While the rate is adapting,
  throttles lower it and do not pause: a provider throttling above a hidden rate gets
  that rate, not a stop every few seconds.

With Redis the bucket is one Lua script per call, atomic, timed by the Redis server's
clock (no skew between machines); embedded, the same arithmetic lives in this process
(``LocalBucket``, checked against the script by the tests). A wait is a sleep of the
sender that asked, never an exception: no dramatiq retry is burnt (dramatiq's own
limiters raise, see ../shared/reference/dramatiq-notes.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

#: Refill arithmetic in floating point can land a hair under a whole token: count it.
_EPSILON = 1e-9


def default_burst(rate_per_second: float) -> int:
    """The burst of an instance that sets none: 50 ms of its rate, at least one token."""
    return max(1, math.ceil(rate_per_second / 20))


@dataclass(frozen=True)
class Adaptation:
    """How the rate follows a throttling provider (see the module's notes).

    Parameters:
        recover: fraction of the agreed rate regained per second without throttles.
        floor: the adapted rate never goes below this fraction of the agreed rate.
        window: seconds over which granted and throttled requests are compared.
    """

    recover: float = 0.02
    floor: float = 0.05
    window: float = 1.0


# The bucket's state (a Redis hash, or LocalBucket's fields): tokens and when they were
# counted; the rate factor (1: the agreed rate) and when it was; the decaying sum of
# tokens granted and when it was decayed; tokens throttled since the rate was last cut,
# and when that was.
#
# KEYS[1] bucket. ARGV: 1 op ("take" | "throttled"), 2 rate, 3 burst, 4 recover,
# 5 floor, 6 window ms, 7 most, 8 least, 9 given back, 10 now ms ("": the server's
# clock; tests pass their own), 11 pause ms. "take" returns {granted, ms to wait when
# none were, factor * 1e6}; "throttled" (7 = the throttled request's tokens, 11 = the
# pause it asked for) returns {1 if the throttle was isolated else 0, 0, factor * 1e6},
# and an isolated one pauses the bucket: nothing is granted until the pause ends.
_SCRIPT = """
local op = ARGV[1]
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local recover, floor, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local most, least, back = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local now, pause = tonumber(ARGV[10]), tonumber(ARGV[11])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'factor', 'fat', 'sent', 'thr', 'dat',
  'cut', 'paused')
local tokens, at = tonumber(s[1]) or 0, tonumber(s[2]) or now
local factor, fat = tonumber(s[3]) or 1, tonumber(s[4]) or now
local sent, thr, dat = tonumber(s[5]) or 0, tonumber(s[6]) or 0, tonumber(s[7]) or now
local cut, paused = tonumber(s[8]) or (now - window), tonumber(s[9]) or 0
factor = math.min(1, factor + math.max(0, now - fat) * recover / 1000)
local decay = math.exp(-math.max(0, now - dat) / window)
sent = sent * decay
if thr > 0 and now - cut >= window then
  local seen = math.max(sent, rate * factor * window / 1000, thr)
  factor = math.max(floor, factor * (1 - thr / seen))
  thr, cut = 0, now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate * factor / 1000 + back)
local first, second = 0, 0
if op == 'take' then
  local whole = math.floor(tokens + 1e-9)
  if now < paused then
    second = paused - now
  elseif whole >= least then
    first = math.min(most, whole)
    tokens = tokens - first
    sent = sent + first
  else
    second = math.ceil((least - tokens) * 1000 / (rate * factor))
  end
else
  if factor >= 1 and thr == 0 then
    first = 1
    paused = math.max(paused, now + pause)
  end
  thr = thr + most
  tokens = 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now, 'factor', tostring(factor),
  'fat', now, 'sent', tostring(sent), 'thr', tostring(thr), 'dat', now, 'cut', cut,
  'paused', paused)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 600000)
return {first, second, math.floor(factor * 1000000)}
"""


class Bucket(Protocol):  # pragma: no mutate block - a Protocol, never run
    """One rate limit, asked on the sending loop (``worker.sending.gate``)."""

    rate: float
    burst: int

    async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
        """Take as many tokens as are there now, up to ``most``, if at least ``least``
        are. Returns (tokens taken, seconds to wait before asking again when none were).
        Never sleeps."""
        ...

    async def give_back(self, tokens: int) -> None:
        """Return tokens taken and not spent (never above the burst)."""
        ...

    async def throttled(self, tokens: int = 1, pause: float = 0.0) -> bool:
        """The provider throttled a request that cost ``tokens`` and asked for a
        ``pause`` (seconds, its ``Retry-After``): count it for the adaptive rate and, if it
        was isolated, grant nothing to any process until the pause ends. Returns whether
        it was isolated."""
        ...


class LocalBucket:
    """The bucket in this process (embedded mode): the script's arithmetic in Python.

    Parameters:
        rate: tokens per second agreed (the adapted rate never exceeds it).
        burst: the most tokens the bucket holds (what may go out at once after a pause).
        adaptation: how the rate follows a throttling provider.
        clock: seconds, monotonic; injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        adaptation: Adaptation | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.adaptation = adaptation or Adaptation()
        self._clock = clock
        now = clock()
        self._tokens, self._at = 0.0, now  # empty at first: see the module's notes
        self.factor, self._factor_at = 1.0, now
        self._granted, self._throttled, self._decayed_at = 0.0, 0.0, now
        self._cut_at = now - self.adaptation.window
        self._paused_until = now
        self._lock = threading.Lock()

    def _advance(self, back: float = 0.0) -> float:
        """Bring the state up to now (the script's first half); returns now."""
        now, a = self._clock(), self.adaptation
        self.factor = min(1.0, self.factor + max(0.0, now - self._factor_at) * a.recover)
        self._factor_at = now
        decay = math.exp(-max(0.0, now - self._decayed_at) / a.window)
        self._granted *= decay
        self._decayed_at = now
        if self._throttled > 0 and now - self._cut_at >= a.window:
            seen = max(
                self._granted,
                self.rate * self.factor * a.window,
                self._throttled,  # pragma: no mutate - keeps 1 - throttled / seen >= 0: so does floor
            )
            self.factor = max(a.floor, self.factor * (1 - self._throttled / seen))
            self._throttled, self._cut_at = 0.0, now
        gained = max(0.0, now - self._at) * self.rate * self.factor
        self._tokens = min(self.burst, self._tokens + gained + back)
        self._at = now
        return now

    def take_now(self, most: int, least: int = 1) -> tuple[int, float]:
        """``try_take`` without the coroutine (thread-safe)."""
        with self._lock:
            now = self._advance()
            whole = int(self._tokens + _EPSILON)
            if now < self._paused_until:
                return 0, self._paused_until - now
            if whole >= least:
                granted = min(most, whole)
                self._tokens -= granted
                self._granted += granted
                return granted, 0.0
            return 0, max(least - self._tokens, _EPSILON) / (self.rate * self.factor)

    async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
        return self.take_now(most, least)

    async def give_back(self, tokens: int) -> None:
        with self._lock:
            self._advance(back=tokens)

    def throttled_now(self, tokens: int = 1, pause: float = 0.0) -> bool:
        """``throttled`` without the coroutine (thread-safe)."""
        with self._lock:
            now = self._advance()
            isolated = self.factor >= 1.0 and not self._throttled
            if isolated:
                self._paused_until = max(self._paused_until, now + pause)
            self._throttled += tokens
            self._tokens = 0.0
            return isolated

    async def throttled(self, tokens: int = 1, pause: float = 0.0) -> bool:
        return self.throttled_now(tokens, pause)


class RedisBucket:
    """The bucket in Redis, shared by every process: one round trip per call.

    Parameters:
        client: a ``redis.asyncio`` client (the calls run on the sending loop).
        key: the bucket's hash.
        rate, burst, adaptation: as ``LocalBucket``'s.
        clock: milliseconds to pass as "now" (tests); ``None``: the Redis server's clock.
    """

    def __init__(
        self,
        client: Any,
        key: str,
        rate: float,
        burst: int,
        adaptation: Adaptation | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.rate, self.burst, self.key = rate, burst, key
        self.adaptation = adaptation or Adaptation()
        self._script = client.register_script(_SCRIPT)
        self._clock = clock
        self.factor = 1.0

    async def _call(
        self,
        op: str,
        most: int,
        least: int = 0,  # pragma: no mutate - "throttled" never reads it, give_back takes none
        back: int = 0,
        pause: float = 0.0,  # pragma: no mutate - only "throttled" reads it, and passes its own
    ) -> tuple[int, int]:
        a = self.adaptation
        now: int | str = ""  # pragma: no mutate - any text that is not a number: the server's clock
        if self._clock is not None:
            now = self._clock()
        args = [op, self.rate, self.burst, a.recover, a.floor, a.window * 1000]
        first, second, factor = await self._script(
            keys=[self.key], args=[*args, most, least, back, now, round(pause * 1000)]
        )
        self.factor = int(factor) / 1_000_000
        return int(first), int(second)

    async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
        granted, wait_ms = await self._call("take", most, least)
        return granted, wait_ms / 1000

    async def give_back(self, tokens: int) -> None:
        if tokens > 0:
            await self._call("take", 0, back=tokens)

    async def throttled(self, tokens: int = 1, pause: float = 0.0) -> bool:
        isolated, _ = await self._call(
            "throttled",  # pragma: no mutate - the script counts any op but "take" as a throttle
            tokens,
            pause=pause,
        )
        return bool(isolated)


class Both:
    """Two limits that must both hold (a sender's own rate within its provider's): tokens
    are taken from the first, then as many from the second, and what the second could not
    match goes back to the first. A throttle counts against the provider's (the second):
    it is the provider that refused."""

    def __init__(self, first: Bucket, second: Bucket) -> None:
        self.first, self.second = first, second
        self.rate = min(first.rate, second.rate)
        self.burst = min(first.burst, second.burst)

    async def try_take(self, most: int, least: int = 1) -> tuple[int, float]:
        got, wait = await self.first.try_take(most, least)
        if not got:
            return 0, wait
        matched, wait = await self.second.try_take(got, min(least, got))
        if matched < got:  # pragma: no mutate - giving back 0 tokens changes nothing (<=)
            await self.first.give_back(got - matched)
        return matched, wait

    async def give_back(self, tokens: int) -> None:
        await self.first.give_back(tokens)
        await self.second.give_back(tokens)

    async def throttled(self, tokens: int = 1, pause: float = 0.0) -> bool:
        return await self.second.throttled(tokens, pause)
