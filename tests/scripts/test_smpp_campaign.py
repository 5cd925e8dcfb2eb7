"""A whole campaign through ``loa worker`` processes and the ``smpp`` provider, on Redis
and PostgreSQL, against the local SMSC as a process: every recipient ends in exactly one
final state, with the receipts of every part applied, and no part submitted twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from campaigns.text import segments
from tests.fake_gateway import fake_gateway
from tests.rig import free_port
from tests.scripts.test_cli import EXAMPLE, ROOT
from tests.scripts.test_worker_cli import run_loa, worker_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

RECIPIENTS = 40
REFUSED = "84961000007"  # the SMSC answers ESME_RINVDSTADR: failed
SILENT = "84961000013"  # the SMSC never answers: unknown, never sent again


def campaign_file(tmp_path: Path) -> tuple[Path, str]:
    """The Bluezone campaign, in Vietnamese only, through the SMSC instance ``carrier``."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('provider = "sandbox"', 'provider = "carrier"')
    lines = [line for line in text.splitlines() if not line.startswith("en = ")]
    path = tmp_path / "smpp.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vi = next(line for line in lines if line.startswith("vi = "))
    return path, json.loads(vi.removeprefix("vi = "))


def recipients(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    rows = [f"Người {i},0961{i:06d}" for i in range(RECIPIENTS)]
    path.write_text("Họ tên,Số điện thoại\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_campaign_through_worker_processes_and_an_smsc(tmp_path, postgres_url, redis_namespace):
    smpp_port = free_port()
    args = ("--port", str(smpp_port), "--receipts", "--receipt-delay", "0.02")
    with fake_gateway("providers.fakes.smpp", *args) as smsc:
        smsc.faults(
            {"status": "0x0B", "destination": REFUSED},
            {"hold": True, "destination": SILENT},
            # Throttled now and then: the send slows down, no message fails for it.
            {"status": "0x58", "after": 10, "times": 6},
        )
        env = worker_env(
            postgres_url,
            redis_namespace,
            free_port(),
            LOA_PROVIDERS__CARRIER__TYPE="smpp",
            LOA_PROVIDERS__CARRIER__HOST="127.0.0.1",
            LOA_PROVIDERS__CARRIER__PORT=str(smpp_port),
            LOA_PROVIDERS__CARRIER__SYSTEM_ID="loa",
            LOA_PROVIDERS__CARRIER__PASSWORD="secret",
            LOA_PROVIDERS__CARRIER__RESPONSE_TIMEOUT="2",
            LOA_PROVIDERS__CARRIER__RATE_PER_SECOND="200",
        )
        campaign, text = campaign_file(tmp_path)
        parts = segments(text).parts
        assert parts > 1  # a long Vietnamese text: a receipt per part

        def loa(*words: str) -> subprocess.CompletedProcess[str]:
            return run_loa(env, tmp_path, *words)

        assert loa("db", "upgrade").returncode == 0
        worker = subprocess.Popen(
            [sys.executable, "-m", "scripts", "worker", "--processes", "2", "--threads", "2"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            launched = loa(
                "campaign", "launch", str(campaign), "-r", str(recipients(tmp_path)),
                "--wait", "--timeout", "90", "--json",
            )  # fmt: skip
            assert launched.returncode == 0, launched.stdout + launched.stderr
            summary = json.loads(launched.stdout)
            counts = {}
            deadline = time.monotonic() + 60  # bounds a hang; the counts decide
            while time.monotonic() < deadline:
                status = loa("campaign", "status", summary["campaign"], "--json")
                counts = json.loads(status.stdout)["statuses"]
                if not any(counts[s] for s in ("queued", "sending", "sent")):
                    break
                time.sleep(0.2)  # polling an outcome
            received = smsc.received()
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        sessions = smsc.sessions()

    final = {k: v for k, v in counts.items() if v}
    assert final == {"delivered": RECIPIENTS - 2, "failed": 1, "unknown": 1}
    # Each worker process bound once at start, and unbound cleanly when stopped.
    assert len(sessions["binds"]) == 2 and {b[2] for b in sessions["binds"]} == {0}
    assert sessions["unbinds"] == 2 and sessions["open"] == 0
    throttled = [row for row in received if row[3] == "0x00000058"]
    assert len(throttled) == 6  # each refused unprocessed, then sent again
    received = [row for row in received if row[3] != "0x00000058"]
    submitted = collections.Counter(row[1] for row in received)
    # Every accepted message's parts exactly once; the refused and the silent one once each.
    assert submitted.pop(REFUSED) == 1 and submitted.pop(SILENT) == 1
    assert set(submitted.values()) == {parts} and len(submitted) == RECIPIENTS - 2


def test_an_embedded_launch_stays_bound_until_its_receipts_are_applied(tmp_path):
    """No Redis: the launching process sends, and the receipts come to its own binds; it
    returns once they are stored and applied, not when the last send is answered."""
    smpp_port = free_port()
    args = ("--port", str(smpp_port), "--receipts", "--receipt-delay", "0.3")
    with fake_gateway("providers.fakes.smpp", *args) as smsc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
        env.update(
            LOA_VAR_DIR=str(tmp_path / "var"),
            LOA_PROVIDERS__CARRIER__TYPE="smpp",
            LOA_PROVIDERS__CARRIER__HOST="127.0.0.1",
            LOA_PROVIDERS__CARRIER__PORT=str(smpp_port),
            LOA_PROVIDERS__CARRIER__SYSTEM_ID="loa",
            LOA_PROVIDERS__CARRIER__PASSWORD="secret",
        )
        campaign, _ = campaign_file(tmp_path)
        launched = run_loa(
            env, tmp_path, "campaign", "launch", str(campaign), "-r", str(recipients(tmp_path)),
            "--timeout", "60", "--json",
        )  # fmt: skip
        assert launched.returncode == 0, launched.stdout + launched.stderr
        statuses = json.loads(launched.stdout)["statuses"]
        sessions = smsc.sessions()
    assert {k: v for k, v in statuses.items() if v} == {"delivered": RECIPIENTS}
    assert sessions["unbinds"] == len(sessions["binds"]) == 1 and sessions["open"] == 0
