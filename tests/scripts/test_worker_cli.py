"""``loa worker`` as production runs it: real processes on Redis and PostgreSQL, with
metrics served over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa

from ledger.db import normalise_url
from tests.conftest import REDIS_URL
from tests.scripts.test_cli import EXAMPLE, ROOT, small_list

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def worker_env(postgres_url: str, redis_namespace: str, port: int, **extra: str) -> dict:
    """The environment of a ``loa`` process on this test's ledger and Redis namespace,
    with the sandbox answering at once and its receipts within 50 ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(
        LOA_DATABASE_URL=postgres_url,
        LOA_REDIS_URL=REDIS_URL,
        LOA_REDIS_NAMESPACE=redis_namespace,
        LOA_METRICS_PORT=str(port),
        LOA_PROVIDERS__SANDBOX__LATENCY_MS="0",
        LOA_PROVIDERS__SANDBOX__RECEIPT_MIN_DELAY_MS="10",
        LOA_PROVIDERS__SANDBOX__RECEIPT_MAX_DELAY_MS="50",
        dramatiq_prom_host="127.0.0.1",
        **extra,
    )
    return env


def run_loa(env: dict, cwd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_worker_process_sends_a_campaign_and_serves_metrics(
    tmp_path, postgres_url, redis_namespace
):
    port = free_port()
    env = worker_env(postgres_url, redis_namespace, port)

    def loa(*args: str) -> subprocess.CompletedProcess[str]:
        return run_loa(env, tmp_path, *args)

    assert loa("db", "upgrade").returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "scripts", "worker", "--processes", "1", "--threads", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        launched = loa(
            "campaign",
            "launch",
            str(EXAMPLE),
            "-r",
            str(small_list(tmp_path)),
            "--wait",
            "--timeout",
            "60",
            "--json",
        )
        assert launched.returncode == 0, launched.stderr
        summary = json.loads(launched.stdout)
        assert summary["state"] == "completed" and summary["final"] == 2

        deadline, body = time.monotonic() + 120, ""  # bounds a hang; the body decides
        while (
            time.monotonic() < deadline
            and 'loa_messages_total{outcome="sent",provider="sandbox"}' not in body
        ):
            try:
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
                    .read()
                    .decode()
                )
            except OSError:
                time.sleep(0.2)  # the exposition server is still starting
        assert 'loa_messages_total{outcome="sent",provider="sandbox"} 2.0' in body
        assert "dramatiq_messages_total" in body

        # The worker seals the events into the audit chain by itself, within seconds.
        engine = sa.create_engine(normalise_url(postgres_url))
        try:
            deadline, sealed, written = time.monotonic() + 120, 0, -1  # bounds a hang
            while sealed != written and time.monotonic() < deadline:
                time.sleep(0.2)  # polling an outcome; the comparison decides
                with engine.connect() as conn:
                    written = conn.scalar(sa.text("SELECT count(*) FROM events"))
                    sealed = conn.scalar(sa.text("SELECT count(*) FROM seals"))
        finally:
            engine.dispose()
        assert sealed == written > 0
        verdict = json.loads(loa("audit", "verify", "--no-seal", "--json").stdout)
        assert verdict["ok"] and verdict["sealed"] == sealed
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def test_a_worker_that_cannot_start_says_why_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(LOA_REDIS_URL=REDIS_URL, LOA_VAR_DIR=str(tmp_path / "var"))

    def worker(**more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts", "worker", "--processes", "1"],
            cwd=tmp_path,
            env={**env, **more},
            capture_output=True,
            text=True,
            timeout=60,
        )

    with socket.socket() as taken:  # another loa worker's metrics, say
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = worker(LOA_METRICS_PORT=str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "LOA_METRICS_PORT" in busy.stderr
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "spool").symlink_to(tmp_path / "elsewhere")
    linked = worker(LOA_METRICS_PORT="0")
    assert linked.returncode == 2 and "LOA_VAR_DIR" in linked.stderr
    for bad in ({"LOA_REDIS_NAMESPACE": "loa*"}, {"LOA_SENDING_LEASE_SECONDS": "9" * 20}):
        refused = worker(LOA_METRICS_PORT="0", **bad)
        assert refused.returncode == 2 and next(iter(bad)) in refused.stderr, refused.stderr
    for run in (busy, linked, refused):
        assert "Traceback" not in run.stderr
