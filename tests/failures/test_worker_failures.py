"""Sending survives what production throws at it: workers killed with ``kill -9``, Redis
restarted, a gateway down or throttling, a provider halted. Real ``loa worker`` processes
on real Redis and PostgreSQL, sending to a local eSMS-speaking gateway that records every
request it gets."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL
from tests.fake_gateway import fake_gateway
from tests.rig import Rig, as_national

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def gateway():
    with fake_gateway() as running:
        yield running


@pytest.fixture
def rig(tmp_path, postgres_url, redis_namespace, gateway):
    rig = Rig(
        workdir=tmp_path,
        database_url=postgres_url,
        redis_url=REDIS_URL,
        namespace=redis_namespace,
        gateway_url=gateway.url,
        provider={"rate_per_second": 400, "burst": 40},
        settings={
            "sending_lease_seconds": 5,  # the reaper settles a dead worker's rows quickly
            "redis_heartbeat_timeout_ms": 2000,  # and dramatiq gives its jobs back quickly
            "redis_maintenance_chance": 1_000_000,
            "batch_size": 100,
        },
    )
    rig.loa("db", "upgrade")
    yield rig
    rig.stop_all()


def in_flight(rig: Rig, campaign_id: str) -> int:
    """Messages handed to the provider and not settled: what a dead worker leaves in doubt."""
    engine = sa.create_engine(rig.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT count(*) FROM messages m JOIN campaigns c ON c.key = m.campaign_key "
                    "WHERE c.id = :id AND m.status = 'sending' AND m.handed_at IS NOT NULL"
                ),
                {"id": campaign_id},
            ).scalar_one()
    finally:
        engine.dispose()


def wait_received(gateway, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(gateway.received()) < at_least:
        assert time.monotonic() < deadline, f"the gateway got fewer than {at_least} requests"
        time.sleep(0.1)  # polling an outcome; the loop condition decides


def test_workers_killed_three_times_lose_nothing_and_send_nothing_twice(rig, gateway):
    recipients = 6000
    campaign = "kill-9"
    rig.launch(campaign, recipients)
    worker = rig.start_worker(processes=1, threads=8)
    doubtful = 0
    for kill in range(1, 4):
        wait_received(gateway, kill * recipients // 5)
        rig.kill(worker)
        doubtful += in_flight(rig, campaign)
        worker = rig.start_worker(processes=1, threads=8)

    counts = rig.wait_final(campaign, recipients, timeout=240)
    assert sum(counts.values()) == recipients
    assert set(counts) <= {"sent", "unknown"}, counts  # the gateway refused nothing

    received = Counter(as_national(phone) for _, phone, _, _ in gateway.received())
    unknown = rig.recipients_in(campaign, "unknown")
    twice = {phone for phone, n in received.items() if n > 1}
    assert twice <= unknown, "a number reached the gateway twice without being in doubt"
    assert counts["unknown"] <= doubtful
    assert rig.recipients_in(campaign, "sent") <= set(received), "recorded sent, never received"
    assert len(set(received)) >= recipients - counts["unknown"]
