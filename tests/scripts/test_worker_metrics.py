"""What the README promises of ``loa worker``'s metrics server, from a real worker on
Redis and PostgreSQL: it listens where ``LOA_METRICS_HOST`` says (and there only), and
serves ``loa_rate_wait_seconds_total{provider}``, the seconds its senders spent waiting
for the provider's rate tokens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.scripts.test_cli import EXAMPLE, ROOT, small_list
from tests.scripts.test_worker_cli import free_port, run_loa, worker_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SENT = 'loa_messages_total{outcome="sent",provider="sandbox"} 2.0'
WAITED = re.compile(r'^loa_rate_wait_seconds_total\{provider="sandbox"\} (\S+)$', re.MULTILINE)


#: Another loopback address than the default's: the server must be found here, and not
#: on 127.0.0.1.
HOST = "127.0.0.2"


def test_metrics_are_served_where_told_with_the_seconds_senders_waited_for_tokens(
    tmp_path, postgres_url, redis_namespace
):
    port = free_port(HOST)
    env = worker_env(
        postgres_url,
        redis_namespace,
        port,
        LOA_METRICS_HOST=HOST,
        # Two a second, one at a time: 1.9 a second aimed at (5 % headroom), and a new
        # bucket starts empty, so the first sender cannot get its token before
        # 1 / 1.9 = 0.53 s after the bucket is first asked, however fast the machine.
        LOA_PROVIDERS__SANDBOX__RATE_PER_SECOND="2",
        LOA_PROVIDERS__SANDBOX__BURST="1",
    )

    def loa(*args: str) -> subprocess.CompletedProcess[str]:
        return run_loa(env, tmp_path, *args)

    assert loa("db", "upgrade").returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "scripts", "worker", "--processes", "1", "--threads", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        launched = loa(
            "campaign", "launch", str(EXAMPLE), "-r", str(small_list(tmp_path)),
            "--wait", "--timeout", "60", "--json",
        )  # fmt: skip
        assert launched.returncode == 0, launched.stderr
        assert json.loads(launched.stdout)["final"] == 2

        # The sends are counted after their tokens' wait: once they show, so must it.
        deadline, body = time.monotonic() + 120, ""  # bounds a hang; the body decides
        while time.monotonic() < deadline and SENT not in body:
            with contextlib.suppress(OSError):  # the exposition server is still starting
                body = (
                    urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=2)
                    .read()
                    .decode()
                )
            if SENT not in body:
                time.sleep(0.2)  # polling an outcome; the body decides
        found = WAITED.search(body)
        assert found, body
        assert float(found.group(1)) >= 0.5
        with pytest.raises(ConnectionRefusedError):  # nothing on the default address
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
