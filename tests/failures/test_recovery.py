"""Recovery with nobody at the keyboard, on real ``loa worker`` processes, Redis and
PostgreSQL: a worker process killed, Redis restarted without its data, PostgreSQL
restarted while the provider answers, a cancel in the middle of sending, a provider that
throttles. No ``loa campaign resume``, no ``loa reap``, and the lease left at its default
(15 minutes), so that only the recovery under test can finish each campaign in time."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.failures.test_receipt_storm import own_postgres
from tests.failures.test_worker_failures import accepted_once, own_redis, wait_received
from tests.fake_gateway import fake_gateway
from tests.rig import Rig

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

RECIPIENTS = 1500
#: How long a campaign may take to finish: generous for a loaded machine (it bounds a
#: hang, and finishes in seconds here), and still well short of the 15-minute lease,
#: which only the recovery under test can beat.
RECOVERY_SECONDS = 600


@pytest.fixture
def gateway():
    with fake_gateway() as running:
        yield running


def make_rig(workdir: Path, database_url: str, namespace: str, gateway, **settings) -> Rig:
    rig = Rig(
        workdir=workdir,
        database_url=database_url,
        redis_url=REDIS_URL,
        namespace=namespace,
        gateway_url=gateway.url,
        provider={"rate_per_second": 300},
        settings={"batch_size": 50, **settings},
    )
    return rig


@pytest.fixture
def rig(tmp_path, postgres_url, redis_namespace, gateway):
    rig = make_rig(tmp_path, postgres_url, redis_namespace, gateway)
    rig.loa("db", "upgrade")
    yield rig
    rig.stop_all()


def children(supervisor: int, kind: str) -> list[int]:
    """The pids of ``loa worker``'s children of one kind (``worker``, ``housekeeping``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if ppid == supervisor and b"worker.processes.child" in command and kind.encode() in command:
            found.append(int(entry.name))
    return found


def test_a_killed_worker_process_is_replaced_and_its_claims_settled(rig, gateway):
    rig.launch("child-killed", RECIPIENTS)
    supervisor = rig.start_worker(processes=2, threads=4)
    wait_received(gateway, RECIPIENTS // 4)
    victim = children(supervisor.pid, "worker")[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    # The lease is 15 minutes: finishing in time takes the dead process's claims settled
    # (they stop being published), its fetched jobs given back, and a new process.
    counts = rig.wait_final("child-killed", RECIPIENTS, timeout=RECOVERY_SECONDS)
    recovered_in = time.monotonic() - killed_at
    assert counts == Counter({"sent": RECIPIENTS}), counts
    assert len(accepted_once(gateway)) == RECIPIENTS  # eSMS's RequestId: never twice
    assert supervisor.poll() is None  # `loa worker` goes on
    workers = children(supervisor.pid, "worker")
    assert len(workers) == 2 and victim not in workers
    print(f"recovered {recovered_in:.1f} s after the kill")


def test_redis_restarted_without_its_data_the_campaign_finishes_by_itself(rig, gateway):
    with own_redis(rig.workdir, persist=False) as (url, restart):
        rig.redis_url = url
        rig.settings["orphan_after_seconds"] = 5
        rig.launch("redis-empty", RECIPIENTS)
        rig.start_worker(processes=1, threads=4)
        wait_received(gateway, RECIPIENTS // 4)
        restart()  # every job, every claim, every bucket gone
        counts = rig.wait_final("redis-empty", RECIPIENTS, timeout=RECOVERY_SECONDS)
    assert counts == Counter({"sent": RECIPIENTS}), counts
    assert len(accepted_once(gateway)) == RECIPIENTS


def test_postgres_restarted_while_sending_every_provider_id_is_kept(
    tmp_path, redis_namespace, gateway
):
    with own_postgres() as (url, restart):
        rig = make_rig(tmp_path, url, redis_namespace, gateway)
        rig.loa("db", "upgrade")
        try:
            rig.launch("pg-restart", RECIPIENTS)
            rig.start_worker(processes=1, threads=4)
            wait_received(gateway, RECIPIENTS // 4)
            restart()
            counts = rig.wait_final("pg-restart", RECIPIENTS, timeout=RECOVERY_SECONDS)
            (missing,) = rig.rows(
                "SELECT count(*) FROM messages WHERE provider_message_id IS NULL "
                "AND status IN ('sent', 'unknown')"
            )[0]
        finally:
            rig.stop_all()
    assert counts == Counter({"sent": RECIPIENTS}), counts
    # What the provider accepted while the ledger was away was spooled and written back:
    # every message can still be matched by its receipts.
    assert missing == 0
    assert len(accepted_once(gateway)) == RECIPIENTS


def test_a_cancel_while_sending_leaves_every_recipient_final(rig, gateway):
    rig.provider["rate_per_second"] = 20  # slow: most of the campaign waits when it is cancelled
    rig.launch("cancelled", 600)
    rig.start_worker(processes=1, threads=2)
    wait_received(gateway, 20)
    rig.loa("campaign", "cancel", "cancelled")
    # The batches in flight meet an outage long enough to give their rows back: what
    # they give back after the cancel must end `cancelled`, not wait in `queued`.
    gateway.faults({"http": 503, "retry_after": 10, "seconds": 3})
    # Once nothing is `sending`, nothing can come back to `queued` any more.
    counts = rig.wait_until(
        "cancelled", lambda c: c["sending"] == 0 and c["queued"] == 0, timeout=120
    )
    assert set(counts) <= {"sent", "cancelled"} and sum(counts.values()) == 600
    assert counts["cancelled"] > 0
    assert rig.statuses("cancelled") == counts  # and it stays so
    again = subprocess.run(
        [sys.executable, "-m", "scripts", "campaign", "cancel", "cancelled"],
        cwd=rig.workdir,
        env=rig.env,
        capture_output=True,
        text=True,
    )
    # A script re-running the cancel does not fail: nothing changes, and it says so.
    said = " ".join((again.stdout + again.stderr).split())  # however the table wrapped
    assert again.returncode == 0 and "already cancelled" in said
    assert rig.statuses("cancelled") == counts


def test_a_provider_throttling_now_and_then_costs_what_it_asked(rig, gateway):
    gateway.throttle(every=40, retry_after=1)
    rig.launch("throttled-often", 800)
    rig.start_worker(processes=1, threads=4)
    counts = rig.wait_final("throttled-often", 800, timeout=RECOVERY_SECONDS)
    assert counts == Counter({"sent": 800})
    received = gateway.received()
    throttled = sum(1 for row in received if row[3] == "http_429")
    accepted = sorted(row[0] for row in received if row[3] == "100")
    longest = max(b - a for a, b in itertools.pairwise(accepted))
    # Each throttle asked for a second. Doubling pauses (1, 2, 4 … 60 s, as before) would
    # leave gaps of 45 s and more after a score of throttles; none is near that (a bound
    # thirty times the pause asked, so a loaded machine's slower sends cannot reach it).
    assert throttled >= 15 and longest < 30, (throttled, longest)
    ((attempts,),) = rig.rows("SELECT max(attempts) FROM messages")
    assert attempts == 1  # a throttled send is not the message's fault
