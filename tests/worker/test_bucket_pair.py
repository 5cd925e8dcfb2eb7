"""A sender's own rate within its provider's (``Both``, what ``Runtime.bucket`` builds for
an instance with ``sender_rate_per_second``): both limits hold, a grant is all or nothing
for what the sender asked at least, what the provider could not match goes back to the
sender's bucket, and a throttle counts against the provider's bucket only.

The buckets are ``LocalBucket``s on a clock the test moves; the way in is the one the
lane takes (``Gate``: ``through`` and ``give_back``; ``bucket.throttled``)."""

from __future__ import annotations

import asyncio

import pytest

from worker.sending.gate import Gate
from worker.sending.ratelimit import Both, LocalBucket


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pair(sender_rate: float, sender_burst: int, rate: float, burst: int):
    """(clock, sender's bucket, provider's bucket, both), both buckets full."""
    clock = Clock()
    sender = LocalBucket(sender_rate, sender_burst, clock=clock)
    provider = LocalBucket(rate, burst, clock=clock)
    clock.now = 100.0
    return clock, sender, provider, Both(sender, provider)


def test_the_pair_runs_at_the_tighter_rate_and_burst_and_the_gate_pays_in_its_burst():
    """A three-part message through a pair whose tighter burst is two: paid two, then
    one, as a message dearer than the burst always is."""
    clock = Clock()
    grants: list[int] = []

    class Noting(LocalBucket):
        def take_now(self, most: int, least: int = 1) -> tuple[int, float]:
            granted, wait = super().take_now(most, least)
            grants.append(granted)
            clock.now += 1  # each ask a second after the last: the sender's burst again
            return granted, wait

    both = Both(Noting(10, 2, clock=clock), LocalBucket(100, 5, clock=clock))
    assert (both.rate, both.burst) == (10, 2)
    clock.now = 100.0  # both full
    gate = Gate(both)
    asyncio.run(asyncio.wait_for(gate.through(3), timeout=60))  # the timeout bounds a hang
    assert [g for g in grants if g] == [2, 1]


def test_a_grant_needs_the_least_asked_from_the_sender_and_from_the_provider():
    """A two-part message needs two tokens at once: one in the sender's bucket is not
    enough, nor one in the provider's (the sender's two then go back to it)."""
    _, sender, provider, both = pair(10, 5, 100, 5)
    sender.take_now(4)  # the sender's bucket holds one
    granted, wait = asyncio.run(both.try_take(5, least=2))
    assert (granted, wait) == (0, pytest.approx(0.1))  # a token at the sender's 10 a second
    assert provider.take_now(5) == (5, 0.0)  # the provider's were not touched

    _, sender, provider, both = pair(10, 5, 100, 5)
    provider.take_now(4)  # the provider's bucket holds one
    granted, wait = asyncio.run(both.try_take(5, least=2))
    assert (granted, wait) == (0, pytest.approx(0.01))  # a token at the provider's 100
    assert sender.take_now(5) == (5, 0.0)  # the sender's five went back


def test_what_the_provider_cannot_match_goes_back_to_the_sender():
    _, sender, provider, both = pair(10, 5, 100, 5)
    provider.take_now(3)  # the provider's bucket holds two
    assert asyncio.run(both.try_take(5)) == (2, 0.0)
    assert sender.take_now(5) == (3, 0.0)  # five taken, two spent, three back


def test_tokens_a_held_message_gives_back_return_to_both_buckets():
    _, sender, provider, both = pair(10, 5, 100, 5)
    assert asyncio.run(both.try_take(5)) == (5, 0.0)
    asyncio.run(Gate(both).give_back(3))  # what the lane does for a message held back
    assert sender.take_now(5) == (3, 0.0)
    assert provider.take_now(5) == (3, 0.0)


def test_a_throttle_counts_against_the_provider_and_pauses_it_as_asked():
    """The provider refused, not the sender: its bucket counts the three tokens (3 of a
    window's 100: the rate keeps 97 %) and holds everyone for the two seconds asked; the
    sender's own bucket is neither slowed nor paused."""
    _, sender, provider, both = pair(10, 5, 100, 5)
    assert asyncio.run(both.throttled(3, 2.0)) is True
    assert provider.take_now(5) == (0, pytest.approx(2.0))
    assert provider.factor == pytest.approx(0.97, rel=1e-9)
    assert sender.take_now(5) == (5, 0.0) and sender.factor == 1.0


def test_a_throttle_without_its_options_counts_one_token_and_pauses_nothing():
    clock, _, provider, both = pair(10, 5, 100, 5)
    assert asyncio.run(both.throttled()) is True
    clock.now += 0.5
    assert provider.take_now(5) == (5, 0.0)
    assert provider.factor == pytest.approx(0.99, rel=1e-9)
