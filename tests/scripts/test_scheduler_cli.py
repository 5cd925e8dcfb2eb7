"""A ``loa scheduler`` that stands by says so, once, naming who holds the lock, and says
whom it took over from when it leads: on real Redis, the real command, its JSON log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import structlog

from tests.conftest import REDIS_URL
from tests.rig import ROOT
from worker.settings import Settings
from worker.upkeep.scheduler import Leadership, Plan, run

ELSEWHERE = "scheduler-b.so-tttt.vn:4242:abcd1234"


class CountedLeadership(Leadership):
    """The real lock, telling the test how many tries it made and when it led."""

    def __init__(self, *args: object, tries_wanted: int) -> None:
        super().__init__(*args)
        self.tries = 0
        self.tried_enough, self.led = threading.Event(), threading.Event()
        self.tries_wanted = tries_wanted

    def hold(self) -> bool:
        leading = super().hold()
        self.tries += 1
        if self.tries >= self.tries_wanted:
            self.tried_enough.set()
        if leading:
            self.led.set()
        return leading


def test_a_standby_says_so_once_and_names_the_holder(tmp_path, redis_namespace):
    from worker.runtime import Runtime

    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_namespace}:scheduler"
    client.set(key, ELSEWHERE, px=60_000)  # another machine leads
    leadership = CountedLeadership(client, key, 0.3, tries_wanted=6)
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", var_dir=tmp_path))
    runtime.ensure_schema()
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(runtime, Plan(), stop, leadership))
    try:
        with structlog.testing.capture_logs() as logs:
            thread.start()
            assert leadership.tried_enough.wait(30), "the standby stopped trying"
            said = [e for e in logs if e["event"] == "scheduler.standby"]
            client.delete(key)  # the leader is gone
            assert leadership.led.wait(30), "the standby did not take over"
            stop.set()
            thread.join(30)
    finally:
        stop.set()
        thread.join(30)
        runtime.close()
    assert not thread.is_alive()
    assert leadership.tries >= 6
    assert len(said) == 1, said  # six tries or more, one line
    assert said[0]["log_level"] == "info"
    assert said[0]["holder"] == ELSEWHERE and said[0]["lock"] == key
    assert said[0]["token"] == leadership.token
    events = [e["event"] for e in logs]
    assert events.count("scheduler.standby") == 1
    took = [e for e in logs if e["event"] == "scheduler.took_over"]
    assert len(took) == 1 and took[0]["previous"] == ELSEWHERE, took
    assert took[0]["log_level"] == "info" and took[0]["token"] == leadership.token
    assert "scheduler.leading" not in events  # it took over: said as such
    assert client.get(key) is None  # released on stop


def _wait_for_line(path: Path, event: str, timeout: float) -> dict:
    """The first JSON log line of ``event`` the process wrote to ``path``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("{") and json.loads(line).get("event") == event:
                return json.loads(line)
        time.sleep(0.05)  # polling an outside process's log; the line decides
    raise AssertionError(f"no {event} within {timeout} s: {path.read_text(encoding='utf-8')}")


def test_loa_scheduler_logs_its_standby_and_its_take_over(tmp_path, redis_namespace):
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{redis_namespace}:scheduler"
    client.set(key, ELSEWHERE, px=600_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(
        LOA_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
        LOA_REDIS_URL=REDIS_URL,
        LOA_REDIS_NAMESPACE=redis_namespace,
        LOA_LOG_FORMAT="json",  # LOA_LOG_LEVEL left at its default: INFO
        PYTHONPATH=str(ROOT),
    )
    log = tmp_path / "scheduler.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts", "scheduler", "--lock-seconds", "1"],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=handle,
        )
    try:
        standby = _wait_for_line(log, "scheduler.standby", 60)
        assert standby["holder"] == ELSEWHERE and standby["level"] == "info"
        assert standby["token"].split(":")[1] == str(process.pid)
        client.delete(key)
        took = _wait_for_line(log, "scheduler.took_over", 30)
        assert took["previous"] == ELSEWHERE and took["level"] == "info"
        assert client.get(key).decode() == took["token"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    assert client.get(key) is None
