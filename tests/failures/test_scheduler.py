"""Two ``loa scheduler`` processes on real Redis and PostgreSQL: one leads and takes the
inbox, the other stands by; the leader is killed (``kill -9``) and the other takes over
within a minute (here the lock lives 4 s) and takes the next file.

Nothing here is timed against the machine's speed: the standby is watched over the
leader's own renewals, and the takeover is checked against the lock's time left at the
kill (it cannot come sooner), with deadlines that only bound a hang."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import sqlalchemy as sa

from ledger.schema import messages
from tests.campaigns.test_arrivals import RULES
from tests.conftest import REDIS_URL
from tests.rig import ROOT
from tests.scripts.test_cli import loa

#: The lock's life: the leader renews it every third of that, so a leader slowed by a
#: loaded machine for less than two thirds of it (2.7 s) keeps it.
LOCK_SECONDS = 4


def drop(inbox: Path, name: str, first: int) -> None:
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    rows = ["event_id,phone,arrived_at,area"]
    rows += [f"{name}-{i},+8210{20000000 + first + i},{at},586" for i in range(5)]
    partial = inbox / f"{name}.csv.part"
    partial.write_text("\n".join(rows) + "\n", encoding="utf-8")
    then = time.time() - 60  # copied a minute ago: settled
    os.utime(partial, (then, then))
    partial.rename(inbox / f"{name}.csv")


def leader(client: redis.Redis, key: str) -> int | None:
    token = client.get(key)
    return int(token.decode().split(":")[1]) if token else None


def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took. ``timeout`` bounds a
    hang, never what is asserted."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.05)  # polling an outside process's effect; the condition decides
    return time.monotonic() - started


def test_a_standby_scheduler_takes_over(tmp_path, postgres_url, redis_namespace):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LOA_")}}
    env.update(
        LOA_DATABASE_URL=postgres_url, LOA_REDIS_URL=REDIS_URL, LOA_REDIS_NAMESPACE=redis_namespace
    )
    # INFO: the standby says when it stands by (``scheduler.standby``), which is waited for.
    env.update(LOA_LOG_FORMAT="json", LOA_LOG_LEVEL="INFO", PYTHONPATH=str(ROOT))
    assert loa("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    inbox, rules = tmp_path / "inbox", tmp_path / "arrivals.toml"
    inbox.mkdir()
    shutil.copy(RULES, rules)
    command = [
        sys.executable,
        "-m",
        "scripts",
        "scheduler",
        "--inbox",
        str(inbox),
        "--rules",
        str(rules),
    ]
    command += ["--poll", "1", "--lock-seconds", str(LOCK_SECONDS)]
    client, key = redis.Redis.from_url(REDIS_URL), f"{redis_namespace}:scheduler"

    def start(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - the process writes it
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)

    first = start("first")
    second = None
    try:
        wait_for(lambda: leader(client, key) == first.pid, 120, "the first scheduler leads")
        second = start("second")
        standing_by = tmp_path / "second.log"
        wait_for(lambda: b"scheduler.standby" in standing_by.read_bytes(), 120, "the standby")
        # The second stands by, trying as often as the leader renews: over three of the
        # leader's renewals (the lock's time to live going up again), it never leads.
        renewals, last = 0, client.pttl(key)
        deadline = time.monotonic() + 120  # bounds a hang: three renewals take 4 s
        while renewals < 3:
            assert time.monotonic() < deadline, "the leader stopped renewing its lock"
            assert leader(client, key) == first.pid
            ttl = client.pttl(key)
            renewals += ttl > last
            last = ttl
            time.sleep(0.1)  # sampling the lock; the renewals counted decide
        drop(inbox, "morning", 0)
        wait_for(
            lambda: (inbox / "done" / "morning.csv").exists(), 120, "the leader takes the file"
        )

        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait()
        with client.pipeline() as pipe:  # MULTI: the lock's owner and its time left, together
            owner, ttl = pipe.get(key).pttl(key).execute()
        # The dead leader's lock lives this long yet (0: it expired before this look).
        left = ttl / 1000 if owner and int(owner.decode().split(":")[1]) == first.pid else 0.0
        took = wait_for(lambda: leader(client, key) == second.pid, 120, "the standby takes over")
        # Not before the lock expired: the standby never takes a lock that is held.
        assert time.monotonic() - killed >= left - 0.05 and left <= LOCK_SECONDS
        print(f"the standby took over {took:.1f} s after the kill")
        drop(inbox, "evening", 100)
        wait_for(
            lambda: (inbox / "done" / "evening.csv").exists(), 120, "the new leader takes the file"
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    assert second.returncode == 0  # SIGTERM: a clean stop, the lock released
    assert client.get(key) is None
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:  # ten visitors, ten welcomes: none lost, none doubled
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 10
    engine.dispose()
