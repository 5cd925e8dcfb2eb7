"""Sending survives what production throws at it: workers killed with ``kill -9``, Redis
restarted, a gateway down or throttling, a provider halted. Real ``loa worker`` processes
on real Redis and PostgreSQL, sending to a local eSMS-speaking gateway that records every
request it gets."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.fake_gateway import FakeGateway, fake_gateway
from tests.rig import Rig, as_national, free_port, missing

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

#: How long a campaign may take to end: it bounds a hang, never the result (each ends in
#: seconds to a minute here, and a loaded machine may take several times that).
FINAL_SECONDS = 600


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
    ((count,),) = rig.rows(
        "SELECT count(*) FROM messages m JOIN campaigns c ON c.key = m.campaign_key "
        "WHERE c.id = :id AND m.status = 'sending' AND m.handed_at IS NOT NULL",
        id=campaign_id,
    )
    return count


def wait_received(gateway, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(gateway.received()) < at_least:
        assert time.monotonic() < deadline, f"the gateway got fewer than {at_least} requests"
        time.sleep(0.1)  # polling an outcome; the loop condition decides


def kill_three_times(rig: Rig, gateway, campaign: str, recipients: int) -> int:
    """Run ``campaign`` and ``kill -9`` its worker three times on the way; returns how many
    messages were handed over and unsettled at the kills (what a kill leaves in doubt)."""
    rig.launch(campaign, recipients)
    worker = rig.start_worker(processes=1, threads=8)
    doubtful = 0
    for kill in range(1, 4):
        wait_received(gateway, kill * recipients // 5)
        rig.kill(worker)
        doubtful += in_flight(rig, campaign)
        worker = rig.start_worker(processes=1, threads=8)
    return doubtful


def test_workers_killed_three_times_lose_nothing_and_send_nothing_twice(rig, gateway):
    """Without resending what was in doubt: what the issue asks, word for word."""
    recipients, campaign = 3000, "kill-9"
    rig.settings["reaper_resends_with_key"] = False
    doubtful = kill_three_times(rig, gateway, campaign, recipients)

    counts = rig.wait_final(campaign, recipients, timeout=FINAL_SECONDS)
    assert sum(counts.values()) == recipients
    assert set(counts) <= {"sent", "unknown"}, counts  # the gateway refused nothing

    received = Counter(as_national(phone) for _, phone, _, _ in gateway.received())
    unknown = rig.recipients_in(campaign, "unknown")
    twice = {phone for phone, n in received.items() if n > 1}
    assert twice <= unknown, "a number reached the gateway twice without being in doubt"
    assert counts["unknown"] <= doubtful
    assert rig.recipients_in(campaign, "sent") <= set(received), "recorded sent, never received"
    assert len(set(received)) >= recipients - counts["unknown"]


def test_with_an_idempotency_key_kills_leave_nothing_in_doubt(rig, gateway):
    """The default with eSMS: what a dead worker had handed over is sent again with the
    same RequestId; the gateway answers 124 to what it already took."""
    recipients, campaign = 3000, "kill-9-keyed"
    kill_three_times(rig, gateway, campaign, recipients)

    assert rig.wait_final(campaign, recipients, timeout=FINAL_SECONDS) == Counter(
        {"sent": recipients}
    )
    assert len(accepted_once(gateway)) == recipients  # each exactly once
    answers: dict[str, list[str]] = {}
    for _, phone, _, answer in gateway.received():
        answers.setdefault(phone, []).append(answer)
    resent = [a for a in answers.values() if len(a) > 1]
    assert all(a[0] == "100" and set(a[1:]) == {"124"} for a in resent), resent[:3]


def accepted_once(gateway) -> Counter[str]:
    """Numbers the gateway accepted, with how often (its idempotency key makes a resend
    an answer 124, so more than once would be a second SMS)."""
    accepted = Counter(
        as_national(phone) for _, phone, _, answer in gateway.received() if answer == "100"
    )
    assert max(accepted.values(), default=1) == 1, "a number was accepted twice"
    return accepted


def test_a_gateway_down_for_30_seconds_pauses_sending_then_the_campaign_completes(rig, gateway):
    """The outage lasts until the test has seen it in `loa campaign status`, and 30 s at
    least: on a loaded machine the launch, the worker's start and the status command may
    take longer than a fixed 30-second outage, and none of it may decide the result."""
    recipients, outage = 1500, 30
    rig.launch("outage", recipients)  # recorded and queued: nothing sends yet
    began = time.time()
    gateway.faults({"http": 503, "seconds": 24 * 3600})  # down until reset below
    rig.start_worker(processes=1, threads=4)
    wait_received(gateway, 1)  # the outage met
    # While it lasts, the campaign's status says its provider is paused, and for how long.
    deadline = time.monotonic() + 300  # bounds a hang only: the outage waits for this
    cooling = 0.0
    while not cooling:
        assert time.monotonic() < deadline, "the status never showed the provider paused"
        status = json.loads(rig.loa("campaign", "status", "outage", "--json").stdout)
        cooling = status["provider_cooldown_seconds"]
    if (left := began + outage - time.time()) > 0:
        time.sleep(left)  # the outage's length (the scenario), not a synchronisation
    during = gateway.received()
    ended = time.time()
    gateway.reset()  # back up: what it records from now on is after the outage
    counts = rig.wait_final("outage", recipients, timeout=FINAL_SECONDS)

    assert counts == Counter({"sent": recipients})  # nothing failed, nothing in doubt
    refused = [t for t, _, _, answer in during if answer == "http_503"]
    assert len(refused) == len(during) > 0  # nothing got through while it was down
    # Paused, not hammering: at 400 msg/s the outage could have taken 400 requests a
    # second (12,000 over 30 s); it took a twelfth of that at most, however long it was.
    assert len(refused) < 400 * (ended - began) / 12
    assert len(accepted_once(gateway)) == recipients  # after the outage, each exactly once


def test_throttling_with_retry_after_is_respected(rig, gateway):
    recipients = 400
    gateway.faults({"http": 429, "retry_after": 3, "requests": 1})
    rig.launch("throttled", recipients)
    rig.start_worker(processes=1, threads=4)
    counts = rig.wait_final("throttled", recipients, timeout=FINAL_SECONDS)

    assert counts == Counter({"sent": recipients})
    received = gateway.received()
    (throttled_at,) = [t for t, _, _, answer in received if answer == "http_429"]
    # Nothing sent after the answer may come before Retry-After has passed: the arrivals
    # from the 429 on have a quiet span of 3 s, less what requests already on their way
    # took to land. Measured from the 429's own arrival, the worker's time to read the
    # answer (long on a loaded machine) would count against the pause; here it cannot.
    after = sorted(t for t, *_ in received if t >= throttled_at)
    quiet = max(later - earlier for earlier, later in itertools.pairwise(after))
    assert quiet >= 3 - 0.5, f"the longest quiet span after the 429 was {quiet:.2f} s"
    assert after[-1] >= throttled_at + 3
    assert len(accepted_once(gateway)) == recipients


@contextmanager
def second_gateway(rig: Rig, name: str) -> Iterator[FakeGateway]:
    """Another eSMS gateway, configured as provider instance ``name`` of the rig."""
    with fake_gateway() as running:
        rig.others[name] = {
            "type": "esms",
            "api_key": "fake-key",
            "secret_key": "fake-secret",
            "base_url": running.url,
        }
        yield running


def test_a_halted_provider_stops_others_go_on_and_resume_restarts_it(tmp_path, rig, gateway):
    with second_gateway(rig, "other") as second:
        gateway.faults({"code": "103", "requests": 1})  # balance exhausted: halt
        rig.launch("halted", 600)
        rig.launch("elsewhere", 600, provider="other")
        rig.start_worker(processes=1, threads=4)

        assert rig.wait_final("elsewhere", 600, timeout=FINAL_SECONDS) == Counter({"sent": 600})
        halts = json.loads(rig.loa("provider", "halts", "--json").stdout)
        assert list(halts) == ["fake"] and "103" in halts["fake"]
        stuck = rig.statuses("halted")
        assert stuck["queued"] > 0 and stuck["failed"] == 0  # waiting, not lost

        rig.loa("provider", "resume", "fake")
        assert rig.wait_final("halted", 600, timeout=FINAL_SECONDS) == Counter({"sent": 600})
        assert len(accepted_once(gateway)) == 600
        assert len(accepted_once(second)) == 600


def test_a_halted_provider_hands_its_campaign_to_the_fallback(rig, gateway):
    with second_gateway(rig, "backup") as backup:
        gateway.faults({"code": "101", "requests": 1})  # credentials refused: halt
        rig.launch("fallback", 600, routing='fallback = "backup"')
        rig.start_worker(processes=1, threads=4)

        assert rig.wait_final("fallback", 600, timeout=FINAL_SECONDS) == Counter({"sent": 600})
        first, second = accepted_once(gateway), accepted_once(backup)
        assert not first.keys() & second.keys()  # no number through both
        assert len(first) + len(second) == 600 and len(second) > 0
        by_provider = dict(
            rig.rows("SELECT provider, count(*) FROM messages GROUP BY provider ORDER BY 1")
        )
        # The ledger names the provider that really sent each message.
        assert (by_provider.get("fake", 0), by_provider["backup"]) == (len(first), len(second))
        assert list(json.loads(rig.loa("provider", "halts", "--json").stdout)) == ["fake"]


@contextmanager
def own_redis(directory: Path, persist: bool = True) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test's own, persisting to an append-only file as production
    Redis must (docker-compose.yml), so that a restart keeps the queues, or (``persist``
    false) keeping nothing, so that a restart loses every job. Yields its URL and a
    function that restarts it."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    command += ["--appendonly", "yes" if persist else "no", "--appendfsync", "always"]
    command += ["--save", ""]
    client = redis.Redis(port=port)

    def start() -> subprocess.Popen:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60  # bounds a hang: redis-server starts in far less
        while True:
            try:
                client.ping()
                return server
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)  # waiting for a process to listen; the ping decides

    server = start()

    def restart() -> None:
        nonlocal server
        server.terminate()  # SIGTERM: Redis flushes its append-only file and exits
        server.wait(timeout=10)
        server = start()

    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        server.kill()
        server.wait()


def test_redis_restarted_mid_campaign_loses_nothing(tmp_path, rig, gateway):
    recipients = 4000
    with own_redis(tmp_path) as (url, restart):
        rig.redis_url = url
        rig.launch("restart", recipients)
        rig.start_worker(processes=1, threads=4)
        wait_received(gateway, recipients // 4)
        restart()
        counts = rig.wait_final("restart", recipients, timeout=FINAL_SECONDS)

    assert sum(counts.values()) == recipients and set(counts) <= {"sent", "unknown"}, counts
    accepted = accepted_once(gateway)
    assert rig.recipients_in("restart", "sent") <= set(accepted)
    assert len(accepted) >= recipients - counts["unknown"]
