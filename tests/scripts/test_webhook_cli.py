"""``loa webhook`` as operators run it: a real process, embedded (SQLite), shut down by
a signal."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.rig import free_port
from tests.scripts.test_cli import ROOT


def test_the_webhook_serves_stores_and_stops_cleanly(tmp_path):
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env["LOA_VAR_DIR"] = str(tmp_path / "var")
    env["LOA_WEBHOOK_METRICS_PORT"] = str(metrics_port)
    env["LOA_WEBHOOK_REQUEST_SECONDS"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts", "webhook", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # bounds a hang; the request decides
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "did not start"
                time.sleep(0.1)  # waiting for the server to listen; the request decides
        # The simulated carrier's receipt, from loopback: stored, then matched by nobody.
        with urllib.request.urlopen(f"{base}/receipts/sandbox?id=S1&stat=DELIVRD") as answer:
            assert answer.status == 200
        try:
            urllib.request.urlopen(f"{base}/receipts/elsewhere?id=S1&stat=DELIVRD")
            raise AssertionError("an unknown provider's route answered")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        # Metrics are not on the public port, but on their own, on the loopback.
        try:
            urllib.request.urlopen(f"{base}/metrics")
            raise AssertionError("/metrics answered on the receipts port")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as answer:
            assert b'loa_webhook_receipts_total{answer="200",provider="sandbox"} 1.0' in (
                answer.read()
            )
        _slow_clients_are_cut_off(port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so that a process manager
    # sees why it stopped.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    with sqlite3.connect(tmp_path / "var" / "loa.db") as ledger:
        rows = ledger.execute(
            "SELECT provider, provider_message_id, status FROM receipts"
        ).fetchall()
    assert rows == [("sandbox", "S1", "delivered")]
    assert "S1" not in stderr and "DELIVRD" not in stderr  # nothing of a receipt in the logs


def _slow_clients_are_cut_off(port: int) -> None:
    """Headers trickled, or a body never finished, lose their connection after the
    deadline (1 s here); a whole request on a new connection is still served."""
    trickling = []
    for request in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", POST_WITHOUT_ITS_BODY):
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(request)  # and nothing more
        trickling.append(client)
    for client in trickling:
        assert _closed(client), "a slow client kept its connection"
        client.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as answer:
        assert answer.status == 200


POST_WITHOUT_ITS_BODY = (
    b"POST /receipts/sandbox HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nid=S"
)


def _closed(client: socket.socket) -> bool:
    """True once the server closed it (an empty read or a reset) within 30 s."""
    try:
        while data := client.recv(4096):
            if b"HTTP/1.1" in data and b"408" not in data:
                return False  # answered as if whole
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
