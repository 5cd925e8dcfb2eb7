"""Receipt intake: signed Twilio-style status callbacks, posted by a load generator on
this machine at a real ``loa webhook`` process on PostgreSQL.

Printed: receipts answered 2xx per second (each one committed to the ledger's inbox
before its answer), whether any was lost (rows in the inbox == 2xx answers), p50 and p99
latency as the load generator saw it, and how fast the drainer then applied them to their
messages. Target (issue #6): at least 3,000 receipts/s persisted, none lost.

    uv run python -m benchmarks.receipts                     # 30,000 receipts, 64 in flight
    uv run python -m benchmarks.receipts --receipts 50000 --in-flight 128
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec, load_spec
from ledger.db import make_engine
from ledger.handover import record_sent
from ledger.messages import claim_batch
from ledger.migrate import upgrade
from ledger.receipts import drain_all
from ledger.schema import receipts
from tests.helpers import record
from tests.rig import free_port, scratch_database

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AUTH = "bench-auth-token"
PUBLIC = "https://loa.example.vn/receipts/intl"
STATUSES = ("sent", "delivered", "undelivered")


def seed(url: str, count: int) -> list[str]:
    """A campaign of ``count`` foreign numbers sent through "intl"; returns their ids."""
    engine = make_engine(url)
    upgrade(engine)
    base = load_spec(ROOT / "examples" / "bluezone.toml").model_dump(mode="json")
    spec = CampaignSpec.model_validate({**base, "id": "bench-receipts", "provider": "intl"})
    rows = [ListRow(i + 2, f"+8210{i:08d}", ()) for i in range(count)]
    record(engine, spec, rows, batch_size=count)
    claimed = claim_batch(engine, spec.id, 1)
    ids = [f"SM{m.id:032d}" for m in claimed]
    record_sent(engine, spec.id, [(m.id, sid) for m, sid in zip(claimed, ids, strict=True)])
    engine.dispose()
    return ids


def start_webhook(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    env.update(
        LOA_DATABASE_URL=url,
        LOA_LOG_LEVEL="WARNING",
        LOA_PROVIDERS__INTL__TYPE="twilio",
        LOA_PROVIDERS__INTL__ACCOUNT_SID="AC" + "0" * 32,
        LOA_PROVIDERS__INTL__AUTH_TOKEN=AUTH,
        LOA_PROVIDERS__INTL__FROM_NUMBER="+15005550006",
        LOA_PROVIDERS__INTL__STATUS_CALLBACK_URL=PUBLIC,
    )
    command = [sys.executable, "-m", "scripts", "webhook", "--port", str(port), "--no-drain"]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("loa webhook did not start") from None
            time.sleep(0.1)  # waiting for a server to listen; the request decides


def callbacks(ids: list[str]) -> list[tuple[bytes, str]]:
    """Bodies and signatures, made before the clock starts (the provider's cost)."""
    validator = RequestValidator(AUTH)
    made = []
    for n, sid in enumerate(ids):
        fields = {"MessageSid": sid, "MessageStatus": STATUSES[n % 3], "AccountSid": "AC1"}
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        made.append((body, validator.compute_signature(PUBLIC, fields)))
    return made


async def post_all(port: int, made: list[tuple[bytes, str]], in_flight: int):
    url = f"http://127.0.0.1:{port}/receipts/intl"
    latencies: list[float] = []
    answers: dict[int, int] = {}
    queue = iter(made)
    connector = aiohttp.TCPConnector(limit=in_flight)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_by_one() -> None:
            for body, signature in queue:
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                }
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                latencies.append(time.perf_counter() - started)
                answers[answer.status] = answers.get(answer.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one_by_one() for _ in range(in_flight)))
        return time.perf_counter() - started, latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receipts", type=int, default=30_000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="webhook processes")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    args = parser.parse_args()

    with scratch_database(args.postgres, "loa_bench") as url:
        ids = seed(url, args.receipts)
        made = callbacks(ids)
        port = free_port()
        webhook = start_webhook(url, port, args.workers)
        try:
            elapsed, latencies, answers = asyncio.run(post_all(port, made, args.in_flight))
            engine = make_engine(url)
            with engine.connect() as conn:
                stored = conn.scalar(sa.select(sa.func.count()).select_from(receipts))
            # Then one drainer (as in a worker process) applies them to their messages.
            drain_started = time.perf_counter()
            applied = drain_all(engine)
            drained = time.perf_counter() - drain_started
            engine.dispose()
        finally:
            webhook.terminate()
            webhook.wait(timeout=30)

    ok = sum(n for status, n in answers.items() if 200 <= status < 300)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    rate = ok / elapsed
    print(
        f"receipts posted: {len(made):,} with {args.in_flight} in flight to "
        f"{args.workers} webhook process(es); answers {answers}"
    )
    print(f"persisted (2xx, committed first): {rate:,.0f} receipts/s  (target >= 3,000)")
    print(f"lost: {ok - stored} (inbox rows {stored:,} vs 2xx {ok:,})")
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"applied to messages afterwards by one drainer: {stored / drained:,.0f} receipts/s "
        f"({drained:.1f} s; {applied})"
    )
    print(f"verdict: {'met' if rate >= 3000 and ok == stored else 'NOT met'}")


if __name__ == "__main__":
    main()
