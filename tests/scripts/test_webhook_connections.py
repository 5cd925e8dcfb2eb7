"""``LOA_WEBHOOK_MAX_CONNECTIONS`` as ``loa webhook`` reads it: a process keeps at most
that many connections open, and one more is answered ``503`` and closed at once, while
those within the cap stay open."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from tests.rig import free_port
from tests.scripts.test_cli import ROOT
from tests.worker.test_webhook_hostile import read_all


def test_a_connection_beyond_loa_webhook_max_connections_is_answered_503(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(
        LOA_VAR_DIR=str(tmp_path / "var"),
        LOA_WEBHOOK_METRICS_PORT="0",
        LOA_WEBHOOK_MAX_CONNECTIONS="3",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", "webhook", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Listening once a connection is taken; kept as the first of those held, so
        # that no connection closed earlier can still count against the cap.
        deadline = time.monotonic() + 120  # bounds a hang; the connection decides
        while True:
            try:
                first = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "did not start"
                time.sleep(0.1)  # waiting for the server to listen; connecting decides
        held = [first] + [
            socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)
        ]
        extra = socket.create_connection(("127.0.0.1", port), timeout=30)
        answer = read_all(extra)  # answered at once, then closed
        assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"too many connections\r\n")
        for client in held:  # the three within the cap are still served
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200 ")
        for client in [*held, extra]:
            with contextlib.suppress(OSError):
                client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
