"""The rate settings the README promises, read from the environment as an operator sets
them and enforced on the path a worker sends by (``send_batch`` → lane → gate → bucket):

- ``LOA_RATE_HEADROOM`` (default 0.05): how far under each provider's agreed rate Loa
  aims, so that the jitter on the way never pushes the carrier's second over its count;
- ``RATE_UNIT = parts``: a provider whose agreed rate counts billed parts is charged a
  token per part, so a three-part message costs what three one-part ones do.

The buckets are the ones the runtime builds from the settings; only their clock is the
test's, so that what they grant is counted in simulated seconds, never measured."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import ClassVar

import pytest

import worker.runtime
from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.summary import status_counts
from tests.helpers import record
from tests.worker.test_dispatch import SPEC, Recording
from tests.worker.test_ratelimit import Clock, drain
from worker.runtime import Runtime
from worker.sending.dispatch import send_batch
from worker.sending.ratelimit import LocalBucket
from worker.settings import Settings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``LOA_`` variable from the shell running the tests: only the test's own."""
    for name in [n for n in os.environ if n.startswith("LOA_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("headroom", "granted_in_ten_seconds"),
    [
        (None, 950),  # the default, 5 %: 100 × 0.95 × 10
        ("0.2", 800),  # 100 × 0.8 × 10
        ("0", 1000),  # no headroom: the agreed rate itself
    ],
)
def test_loa_rate_headroom_is_how_far_under_the_agreed_rate_the_bucket_grants(
    headroom, granted_in_ten_seconds, clean_environment, tmp_path
):
    env = clean_environment
    clock = Clock()
    env.setattr(
        worker.runtime, "LocalBucket", lambda rate, burst: LocalBucket(rate, burst, clock=clock)
    )
    env.setenv("LOA_PROVIDERS__SANDBOX__RATE_PER_SECOND", "100")
    env.setenv("LOA_PROVIDERS__SANDBOX__BURST", "5")
    if headroom is not None:
        env.setenv("LOA_RATE_HEADROOM", headroom)
    runtime = Runtime(Settings(var_dir=tmp_path))
    bucket = runtime.gate("sandbox").bucket  # the one every sender of the process asks
    assert isinstance(bucket, LocalBucket)
    grants = drain(bucket, clock, 1200)
    # A new bucket starts empty, then grants at the rate it aims at: over ten seconds,
    # the agreed rate less the headroom, never the agreed rate.
    assert sum(1 for at in grants if at <= 10 + 1e-9) == granted_in_ten_seconds


class Counting(LocalBucket):
    """The runtime's bucket, counting the tokens its senders spent (taken, less those
    given back), on a clock that moves a second each time it is read: every ask finds
    the bucket full, so sending never waits on the test's time."""

    made: ClassVar[list[Counting]] = []

    def __init__(self, rate: float, burst: int) -> None:
        ticks = itertools.count()
        super().__init__(rate, burst, clock=lambda: float(next(ticks)))
        self.spent = 0
        Counting.made.append(self)

    def take_now(self, most: int, least: int = 1) -> tuple[int, float]:
        granted, wait = super().take_now(most, least)
        self.spent += granted
        return granted, wait

    async def give_back(self, tokens: int) -> None:
        self.spent -= tokens
        await super().give_back(tokens)


#: 420 characters of the GSM-7 basic set: a concatenated GSM-7 part holds 153, so the
#: carrier bills 3 parts (306 < 420 <= 459).
LONG = "Cai Bluezone. " * 30
RECIPIENTS = 20


@pytest.mark.parametrize(("unit", "tokens"), [("parts", 3 * RECIPIENTS), (None, RECIPIENTS)])
def test_rate_unit_parts_charges_the_providers_rate_a_token_per_part(
    unit, tokens, clean_environment, tmp_path: Path
):
    env = clean_environment
    Counting.made.clear()
    env.setattr(worker.runtime, "LocalBucket", Counting)
    env.setenv("LOA_PROVIDERS__SANDBOX__RATE_PER_SECOND", "1000")
    env.setenv("LOA_PROVIDERS__SANDBOX__BURST", "10")
    if unit is not None:  # unset: messages, the default
        env.setenv("LOA_PROVIDERS__SANDBOX__RATE_UNIT", unit)
    url = f"sqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    env.setenv("LOA_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    spec = SPEC.model_copy(
        update={"messages": {"vi": SPEC.messages["vi"].model_copy(update={"text": LONG})}}
    )
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(RECIPIENTS)]
    record(engine, spec, rows)

    runtime = Runtime(Settings(var_dir=tmp_path), engine=engine)
    provider = Recording()
    provider.config = runtime.provider("sandbox").config  # the instance as configured
    runtime._providers["sandbox"] = provider  # the one thing faked: the carrier
    send_batch(runtime, spec.id, 1)

    assert status_counts(engine, spec.id)[Status.SENT] == RECIPIENTS
    assert {m.parts for m in provider.sent} == {3}
    (bucket,) = Counting.made
    assert bucket.spent == tokens
    engine.dispose()
