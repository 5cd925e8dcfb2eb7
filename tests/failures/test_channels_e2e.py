"""Zalo first, SMS when Zalo cannot reach them, end to end: ``loa worker`` (killed with
``kill -9`` mid-campaign) on Redis and PostgreSQL, ``loa webhook`` taking the delivery
events the local ZNS server posts, signed, and a local eSMS gateway for the SMS.

A third of the numbers have no Zalo account; a fifth of those Zalo takes never report
their delivery within the campaign's window, and report it once their SMS has gone (the
doubles). Then every recipient is looked at: one final state each, nobody texted after
a timely Zalo delivery, nobody left unreached while a channel remained, each SMS once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from providers.fakes.zalo import Zns
from tests.conftest import REDIS_URL
from tests.fake_gateway import fake_gateway
from tests.rig import Rig, as_national, free_port, national

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

#: Bounds a hang, never the result (the window alone is a minute).
FINAL_SECONDS = 600
ZNS = Zns()  # the fake's app, secrets and first pair
RECIPIENTS = 300


@pytest.fixture
def zns(tmp_path):
    port = free_port()
    events = f"http://127.0.0.1:{port}/receipts/zalo"
    args = ("--events-url", events, "--no-zalo-share", "0.33", "--lost-share", "0.2")
    with fake_gateway("providers.fakes.zalo", *args) as running:
        running.webhook_port = port
        yield running


@pytest.fixture
def rig(tmp_path, postgres_url, redis_namespace, zns):
    with fake_gateway() as sms:
        rig = Rig(
            workdir=tmp_path,
            database_url=postgres_url,
            redis_url=REDIS_URL,
            namespace=redis_namespace,
            gateway_url=sms.url,
            settings={
                "sending_lease_seconds": 5,
                "redis_heartbeat_timeout_ms": 2000,
                "redis_maintenance_chance": 1_000_000,
                "batch_size": 50,
            },
            others={
                "zalo": {
                    "type": "zalo_zns",
                    "app_id": ZNS.app_id,
                    "secret_key": ZNS.secret_key,
                    "refresh_token": ZNS.refresh_token,
                    "access_token": ZNS.access_token,
                    "oa_secret_key": ZNS.oa_secret,
                    "base_url": zns.url,
                    "oauth_url": zns.url,
                    "rate_per_second": 100,
                }
            },
        )
        rig.sms = sms
        rig.loa("db", "upgrade")
        webhook = subprocess.Popen(
            [sys.executable, "-m", "scripts", "webhook", "--port", str(zns.webhook_port)],
            cwd=tmp_path,
            env=rig.env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "webhook.log", "w"),  # noqa: SIM115
        )
        try:
            listening(zns.webhook_port, webhook)
            yield rig
        finally:
            rig.stop_all()
            webhook.terminate()
            webhook.wait(timeout=30)


def listening(port: int, process: subprocess.Popen, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 120  # bounds a hang; the request decides
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "no webhook"
            time.sleep(0.1)  # waiting for the server to listen; the request decides


def campaign(workdir: Path) -> tuple[Path, Path]:
    spec = workdir / "zalo-sms.toml"
    spec.write_text(
        'id = "zalo-then-sms"\n'
        'name = "Cài Bluezone: Zalo trước, SMS sau"\n'
        'category = "public_service"\n'
        'brandname = "NinhThuan"\n'
        'provider = "fake"\n'
        'validity = "6h"\n'
        "[messages]\n"
        'vi = "{name}: đề nghị cài Bluezone https://bluezone.gov.vn (mã {code})"\n'
        "[prices]\ndefault = 800\n"
        "[[channels]]\n"
        'name = "zalo"\nkind = "template"\nprovider = "zalo"\ntemplate = "231432"\n'
        'params = { ten = "{name}", ma = "BZ-{code}" }\nprice = 200\ndeliver_within = "1m"\n'
        '[[channels]]\nname = "sms"\nkind = "text"\n',
        encoding="utf-8",
    )
    listing = workdir / "zalo-sms.csv"
    with listing.open("w", encoding="utf-8") as out:
        out.write("phone,name,code\n")
        out.writelines(f"{national(i)},Người dân {i},{i:04d}\n" for i in range(RECIPIENTS))
    return spec, listing


def by_recipient(rig: Rig) -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, str]] = {}
    for recipient, channel, status in rig.rows("SELECT recipient, channel, status FROM messages"):
        found.setdefault(as_national(recipient), {})[channel] = status
    return found


def settled(rig: Rig) -> bool:
    """Nothing standing by, queued or on its way, and no fallback left open."""
    ((open_,),) = rig.rows(
        "SELECT count(*) FROM messages WHERE status IN ('standby', 'queued', 'sending') "
        "OR fallback = 0"
    )
    return open_ == 0


def wait(condition, what: str) -> None:
    deadline = time.monotonic() + FINAL_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {FINAL_SECONDS} s"
        time.sleep(0.5)  # polling an outcome; the condition decides


def test_zalo_then_sms_through_workers_killed_on_the_way(rig, zns):
    spec, listing = campaign(rig.workdir)
    launched = json.loads(
        rig.loa("campaign", "launch", str(spec), "-r", str(listing), "--json").stdout
    )
    assert launched["recipients"] == RECIPIENTS
    worker = rig.start_worker(processes=1, threads=8)
    wait(lambda: len(zns.received()) >= RECIPIENTS // 3, "a third sent to Zalo")
    rig.kill(worker)
    worker = rig.start_worker(processes=1, threads=8)
    wait(lambda: settled(rig), "settled")

    # The deliveries Zalo never reported in time come now, after their SMS went.
    flushed = zns._call("/_fake/deliver", {})["statuses"]
    assert set(flushed.values()) == {200}, flushed
    # Each finds its message, even one whose send answer (with its msg_id) the kill lost:
    # the event echoes Loa's id as tracking_id.
    late = len(flushed)
    assert late > 0
    applied = "SELECT 1 FROM receipts WHERE state IN ('pending', 'waiting')"
    wait(lambda: not rig.rows(applied), "late deliveries applied")

    people = by_recipient(rig)
    assert len(people) == RECIPIENTS
    zns_answers: dict[str, set[str]] = {}
    for _, phone, _, answer in zns.received():
        zns_answers.setdefault(as_national("+" + phone), set()).add(answer)
    no_zalo = {n for n, answers in zns_answers.items() if "-118" in answers}
    texted = Counter(as_national(phone) for _, phone, _, a in rig.sms.received() if a == "100")
    assert max(texted.values()) == 1, "an SMS accepted twice"
    for number, channels in people.items():
        zalo, sms = channels[0], channels[1]
        # One notification that reached them or is on its way; never none while a
        # channel remained.
        assert zalo == "delivered" or sms in ("sent", "delivered"), (number, channels)
        if number in no_zalo:  # (unknown: its answer was lost in the kill; it went late)
            assert zalo in ("unreachable", "unknown") and number in texted
        elif sms == "unneeded":
            assert zalo == "delivered" and number not in texted  # delivered in time
        else:  # Zalo took it and said nothing within the window: the SMS went, late
            assert number in texted and sms == "sent"
    assert 60 < len(no_zalo) < 140  # about a third, the same numbers every run

    status = json.loads(rig.loa("campaign", "status", "zalo-then-sms", "--json").stdout)
    found = status["channels"]
    assert found["recipients"] == RECIPIENTS
    assert sum(found["reached"].values()) + sum(found["not_reached"].values()) == RECIPIENTS
    unreachable = sum(1 for channels in people.values() if channels[0] == "unreachable")
    assert found["fell_back"]["unreachable"] == unreachable
    assert found["doubles"] == late
    assert not rig.rows("SELECT 1 FROM receipts WHERE state = 'unmatched'")
    assert found["fell_back"]["late"] >= late
    assert found["saved"] > 0
    verdict = rig.loa("audit", "verify", "--json", timeout=300)
    assert json.loads(verdict.stdout)["ok"] is True
