"""How the in-process bucket (``LocalBucket``, embedded mode) measures a throttling
provider, on a clock the test moves: what it counts as granted, over which window, when
it cuts the rate, and what a sender is told to wait once the rate is cut.

The rule (``worker.sending.ratelimit``): at most once per ``window``, the throttles since
the last cut multiply the rate by ``1 - throttled / seen``, where ``seen`` is the decaying
sum of the tokens granted (time constant ``window``), never counted below a window at the
current rate. Each expectation below is worked out by hand from that rule."""

from __future__ import annotations

import asyncio
import math

import pytest

from worker.sending.ratelimit import Adaptation, LocalBucket


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_share_throttled_is_measured_against_every_token_granted_decayed_over_the_window():
    """A burst larger than a window at the rate (10 tokens at 2 a second, window 2 s):
    what the provider saw is the ten granted, in two asks, decayed for the second since
    (``10 × e^(-1/2)``, about 6.07), not the window's 4. Four of them throttled: the rate
    keeps ``1 - 4 / 6.07``, about a third, and the next token is due at that rate."""
    clock = Clock()
    bucket = LocalBucket(rate=2, burst=10, adaptation=Adaptation(window=2.0), clock=clock)
    clock.now = 10.0  # full
    assert bucket.take_now(4) == (4, 0.0)
    assert bucket.take_now(6) == (6, 0.0)
    clock.now = 11.0
    assert bucket.throttled_now(4) is True  # the first at the agreed rate: isolated
    granted, wait = bucket.take_now(1)  # the cut happens at the next ask
    expected = 1 - 4 / (10 * math.exp(-1 / 2))
    assert bucket.factor == pytest.approx(expected, rel=1e-9)
    assert granted == 0  # the throttle emptied the bucket
    assert wait == pytest.approx(1 / (2 * expected), rel=1e-9)  # a token at the cut rate


def test_after_a_quiet_spell_a_throttle_is_measured_against_a_window_at_the_rate():
    """Nothing granted for a long time: the sum has decayed to nothing, and the one
    throttle is weighed against a window's worth at the rate (2 a second × 2 s = 4), so
    the rate keeps three quarters, not nothing."""
    clock = Clock()
    bucket = LocalBucket(rate=2, burst=10, adaptation=Adaptation(window=2.0), clock=clock)
    clock.now = 100.0
    assert bucket.throttled_now(1) is True
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(0.75, rel=1e-9)


def test_the_rate_is_cut_again_exactly_one_window_after_the_last_cut():
    """Throttles between cuts are gathered and counted at the first ask a whole window
    after the last cut: at 11 s for a cut at 10 s (window 1 s), not later."""
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    clock.now = 10.0
    bucket.throttled_now(1)
    bucket.take_now(1)  # the first cut, at 10 s: one of a window's 100
    assert bucket.factor == pytest.approx(0.99, rel=1e-9)
    clock.now = 10.5
    bucket.throttled_now(1)
    bucket.take_now(1)  # half a window later: gathered, not yet counted
    assert bucket.factor == pytest.approx(1.0, rel=1e-9)  # 0.99 + 0.5 s × 2 % back
    clock.now = 11.0
    bucket.take_now(1)
    assert bucket.factor == pytest.approx(0.99, rel=1e-9)  # counted at 11 s exactly


def test_a_throttle_empties_the_bucket():
    """What the bucket held was about to meet the same refusal: after a throttle, a
    full bucket has nothing for a sender asking at the same moment, and tells it to
    wait a token at the cut rate (1 in 100 refused: 99 a second)."""
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    clock.now = 1.0  # full: five tokens
    bucket.throttled_now(1)
    granted, wait = bucket.take_now(5)
    assert granted == 0
    assert wait == pytest.approx(1 / 99, rel=1e-9)


def test_a_new_bucket_reports_the_agreed_rate():
    assert LocalBucket(rate=100, burst=5, clock=Clock()).factor == 1.0


def test_asked_without_its_options_the_bucket_counts_one_token_and_pauses_nothing():
    """The defaults the ``Bucket`` protocol documents: a throttle of one token without a
    ``Retry-After`` (no pause), and a take that is content with a single token."""
    clock = Clock()
    bucket = LocalBucket(rate=100, burst=5, clock=clock)
    clock.now = 0.01  # exactly one token
    assert asyncio.run(bucket.try_take(5)) == (1, 0.0)
    clock.now = 1.0
    assert asyncio.run(bucket.throttled()) is True
    clock.now = 1.5  # no pause was asked: the burst is there again
    assert bucket.take_now(5) == (5, 0.0)
    assert bucket.factor == pytest.approx(0.99, rel=1e-9)  # one token of a window's 100

    clock = Clock()  # the same, without the coroutine
    other = LocalBucket(rate=100, burst=5, clock=clock)
    clock.now = 1.0
    assert other.throttled_now() is True
    clock.now = 1.5
    assert other.take_now(5) == (5, 0.0)
    assert other.factor == pytest.approx(0.99, rel=1e-9)
