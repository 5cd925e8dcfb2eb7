"""Receipt intake: signed Twilio-style status callbacks, posted by a load generator on
this machine at a real ``loa webhook`` process on PostgreSQL, beside a bare ASGI app.

Printed: receipts answered 2xx per second (each one committed to the ledger's inbox
before its answer), whether any was lost (rows in the inbox == 2xx answers), p50 and p99
latency as the load generator saw it, and how fast one drainer then applied them to their
messages. Target (issue #6): at least 3,000 receipts/s persisted, none lost.

References, measured in the same run, interleaved with Loa round by round (bare, Loa,
bare, Loa…), so that a passing load falls on both alike:

- intake: ``benchmarks.bare_receipts``, an ASGI app on the same server (uvicorn with
  httptools, the same number of processes) that reads each POST's body and commits the
  same row, with the same driver (psycopg 3) and the same ``INSERT … ON CONFLICT DO
  NOTHING``, to a copy of the inbox table (same columns and indexes), group-committed as
  Loa does. It is the least a durable 2xx needs on this server and database; what the
  ratio shows is what Loa adds (signature check, routing, provider parsing, checks,
  SQLAlchemy, metrics). The same load generator, bodies and in-flight count drive both.
- drainer: the same receipts applied to the same messages by three set-based statements
  in one transaction (events inserted, messages moved, receipts marked), the least the
  database must do to apply them; messages and receipts are put back before each side.

    uv run python -m benchmarks.receipts                     # 30,000 receipts, 64 in flight
    uv run python -m benchmarks.receipts --quick             # 5,000 receipts, 5 rounds: ~30 s idle
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
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import uvloop
from sqlalchemy.engine import Engine, make_url
from twilio.request_validator import RequestValidator

from benchmarks import figures
from benchmarks.cpu import Spent, watch_database
from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec, load_spec
from ledger.db import make_engine
from ledger.handover import record_sent
from ledger.messages import claim_batch
from ledger.migrate import upgrade
from ledger.receipts import drain_all
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


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}


def start_webhook(url: str, port: int, workers: int) -> subprocess.Popen:
    """``loa webhook`` with one Twilio-style provider instance, its drainer off."""
    env = _environment()
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
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)


def start_bare(url: str, port: int, workers: int) -> subprocess.Popen:
    """The reference: ``benchmarks.bare_receipts`` on the same server and process count."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    command = [sys.executable, "-m", "benchmarks.bare_receipts", "--port", str(port)]
    command += ["--workers", str(workers), "--dsn", dsn]
    return subprocess.Popen(command, cwd=ROOT, env=_environment(), stderr=subprocess.DEVNULL)


def wait_ready(process: subprocess.Popen, port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"{what} did not start") from None
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


def requests(port: int, made: list[tuple[bytes, str]]) -> list[bytes]:
    """Each callback as the bytes of its HTTP/1.1 request (made before the clock starts)."""
    head = (
        f"POST /receipts/intl HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
    )
    return [
        f"{head}X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body, signature in made
    ]


async def post_all(port: int, wire: list[bytes], in_flight: int):
    """Post every request over ``in_flight`` kept-alive connections, each waiting for its
    answer before the next: a client lean enough (raw HTTP/1.1 on asyncio streams, no
    client library) that the server and the database, not it, set the pace."""
    latencies: list[float] = []
    answers: dict[int, int] = {}
    queue = iter(wire)

    async def one_by_one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]
                    await reader.readexactly(int(length))
                except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                    status = 0  # no answer: counted apart, the connection opened again
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - started)
                answers[status] = answers.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_by_one() for _ in range(in_flight)))
    return time.perf_counter() - started, latencies, answers


@dataclass
class Intake:
    """One round of posting every receipt at one server."""

    elapsed: float
    latencies: list[float]
    answers: dict[int, int]
    stored: int
    cpu_seconds: float

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.answers.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return figures.rate(self.ok, self.elapsed)

    @property
    def lost(self) -> int:
        return self.ok - self.stored

    def quantile(self, q: float) -> float:
        """Latency at ``q`` in ms (p50: 0.5, p99: 0.99)."""
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * q) - 1)] * 1000


def intake(
    engine: Engine, table: str, server: subprocess.Popen, port: int,
    made: list[tuple[bytes, str]], in_flight: int,
):  # fmt: skip
    """Empty ``table``, post every receipt at ``port``, count the rows it then holds; the
    CPU the server and PostgreSQL spent meanwhile (the load generator's is not counted:
    it is the same on both sides)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {table}")
    wire = requests(port, made)
    with Spent(server.pid) as spent:
        elapsed, latencies, answers = uvloop.run(post_all(port, wire, in_flight))
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    return Intake(elapsed, latencies, answers, stored, spent.seconds)


#: What the drainer does to the receipts pending, as the database does it unaided: the
#: moves logged, the messages moved (a receipt of the status a message already has moves
#: nothing, as ``campaigns.status.can_move``), the receipts marked.
BARE_APPLY = (
    """
    INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status, code, detail)
    SELECT c.id, m.id, now(), 'receipt', m.status, r.status, r.code,
           json_build_object('received_at', r.received_at)
    FROM receipts r
    JOIN messages m ON m.provider = r.provider AND m.provider_message_id = r.provider_message_id
    JOIN campaigns c ON c.key = m.campaign_key
    WHERE r.state = 'pending' AND m.status <> r.status
    """,
    """
    UPDATE messages m
    SET status = r.status, updated_at = now(), claim_token = NULL,
        final_at = CASE WHEN r.status IN ('delivered', 'undelivered') THEN now() END,
        error_code = CASE WHEN r.status = 'undelivered' THEN r.code END
    FROM receipts r
    WHERE r.state = 'pending' AND m.provider = r.provider
      AND m.provider_message_id = r.provider_message_id AND m.status <> r.status
    """,
    "UPDATE receipts SET state = 'applied', applied_at = now() WHERE state = 'pending'",
)


def put_back(engine: Engine, admin: Engine) -> None:
    """Messages as sent and receipts pending again, dead rows swept (not timed)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE messages m SET status = s.status, updated_at = s.updated_at, "
            "claim_token = s.claim_token, final_at = s.final_at, error_code = s.error_code "
            "FROM messages_as_sent s WHERE m.id = s.id"
        )
        conn.exec_driver_sql(
            "UPDATE receipts SET state = 'pending', applied_at = NULL, tried_at = NULL"
        )
    with admin.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE messages, receipts")


#: CPU seconds of each drain round (this process and PostgreSQL's), Loa's and the bare one's.
DRAIN_CPU: dict[str, list[float]] = {"loa": [], "bare": []}


def drain_round(engine: Engine, admin: Engine) -> tuple[float, dict[str, int]]:
    put_back(engine, admin)
    with Spent(os.getpid()) as spent:
        started = time.perf_counter()
        applied = drain_all(engine)
        took = time.perf_counter() - started
    DRAIN_CPU["loa"].append(spent.seconds)
    return took, applied


def bare_drain_round(engine: Engine, admin: Engine) -> float:
    put_back(engine, admin)
    with Spent(os.getpid()) as spent:
        started = time.perf_counter()
        with engine.begin() as conn:
            for statement in BARE_APPLY:
                conn.exec_driver_sql(statement)
        took = time.perf_counter() - started
    DRAIN_CPU["bare"].append(spent.seconds)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receipts", type=int, default=None, help="30,000; --quick: 5,000")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="webhook processes (both)")
    parser.add_argument("--rounds", type=int, default=None, help="intake rounds a side: 3, quick 5")
    parser.add_argument("--quick", action="store_true", help="5,000 receipts, 5 rounds")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--db-prefix", default="loa_bench", help="scratch database's prefix")
    args = parser.parse_args()
    # Quick: 5,000 receipts, so that the bare app's round (4,000-5,000 a second idle) lasts
    # a second; at 2,000 (0.4 s) the ratio moved by half under two busy processes.
    count = args.receipts or (5_000 if args.quick else 30_000)
    rounds = args.rounds or (5 if args.quick else 3)

    loa_runs: list[Intake] = []
    bare_runs: list[Intake] = []
    drains: list[float] = []
    bare_drains: list[float] = []
    applied: dict[str, int] = {}
    with scratch_database(args.postgres, args.db_prefix) as url:
        watch_database(url)
        ids = seed(url, count)
        made = callbacks(ids)
        engine = make_engine(url)
        admin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bare_receipts (LIKE receipts INCLUDING ALL)")
            conn.exec_driver_sql("CREATE TABLE messages_as_sent AS SELECT * FROM messages")
        port, bare_port = free_port(), free_port()
        webhook = start_webhook(url, port, args.workers)
        bare = start_bare(url, bare_port, args.workers)
        try:
            wait_ready(webhook, port, "loa webhook")
            wait_ready(bare, bare_port, "the bare app")
            warm = made[: min(500, count)]  # connections opened, code paths warm: not timed
            intake(engine, "bare_receipts", bare, bare_port, warm, args.in_flight)
            intake(engine, "receipts", webhook, port, warm, args.in_flight)
            for _ in range(rounds):
                bare_runs.append(
                    intake(engine, "bare_receipts", bare, bare_port, made, args.in_flight)
                )
                loa_runs.append(intake(engine, "receipts", webhook, port, made, args.in_flight))
            # Then one drainer (as in a worker process) applies the last round's receipts to
            # their messages; the bare statements apply the same ones, in turn.
            for _ in range(min(rounds, 3)):
                bare_drains.append(bare_drain_round(engine, admin))
                seconds, applied = drain_round(engine, admin)
                drains.append(seconds)
        finally:
            for process in (webhook, bare):
                process.terminate()
            for process in (webhook, bare):
                process.wait(timeout=30)
            admin.dispose()
            engine.dispose()

    print(
        f"receipts posted: {count:,} a round, {rounds} intake rounds a side, {args.in_flight} in "
        f"flight, {args.workers} server process(es) each; answers (last round) Loa "
        f"{loa_runs[-1].answers}, bare {bare_runs[-1].answers}"
    )
    print("| round | Loa receipts/s | bare receipts/s | Loa p50 / p99 ms | bare p50 / p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for n, (ours, theirs) in enumerate(zip(loa_runs, bare_runs, strict=True), 1):
        print(
            f"| {n} | {ours.rate:,.0f} | {theirs.rate:,.0f} "
            f"| {ours.quantile(0.5):.1f} / {ours.quantile(0.99):.1f} "
            f"| {theirs.quantile(0.5):.1f} / {theirs.quantile(0.99):.1f} |"
        )
    rate = statistics.median(r.rate for r in loa_runs)
    bare_rate = statistics.median(r.rate for r in bare_runs)
    lost = sum(r.lost for r in loa_runs)
    bare_lost = sum(r.lost for r in bare_runs)
    print(f"persisted (2xx, committed first), median: {rate:,.0f} receipts/s (target >= 3,000)")
    print(
        f"lost: Loa {lost} (inbox rows {sum(r.stored for r in loa_runs):,} vs 2xx "
        f"{sum(r.ok for r in loa_runs):,}), bare {bare_lost}"
    )
    drained, bare_drained = statistics.median(drains), statistics.median(bare_drains)
    print(
        f"applied to messages afterwards by one drainer: {count / drained:,.0f} receipts/s "
        f"({drained:.2f} s; {applied}); bare statements {count / bare_drained:,.0f} receipts/s"
    )
    met = rate >= 3000 and lost == 0 and all(r.ok == count for r in loa_runs)
    print(f"verdict: {'met' if met else 'NOT met'}")

    name = f"{args.workers} process(es)"
    # The latency figure is the median's: p99 (printed per round above) is the scheduler's
    # on a shared machine, its ratio to the bare app's ranging 1.3-2.8 between runs.
    figures.report(
        [
            figures.Figure(
                benchmark="receipts",
                measure=f"{count:,} receipts persisted, {args.in_flight} in flight, {name}",
                value=rate,
                unit="receipts/s",
                reference=bare_rate,
                reference_name="bare ASGI app, same server and driver, group commit",
                better="higher",
                absolute=f"target ≥ 3,000/s, none lost: {'met' if met else 'missed'}",
            ),
            # What each receipt cost the serving side (server and PostgreSQL) in CPU: the
            # wall-clock ratio above rises with the load (0.41 idle, 0.61 beside two busy
            # processes, 0.74 beside other tests): the bare app leans on its server, the
            # load generator and PostgreSQL each having a core at once, and loses more
            # when cores are short. The work each side does is what stays put.
            figures.Figure(
                benchmark="receipts",
                measure=f"{count:,} receipts per CPU second of the server and PostgreSQL",
                value=statistics.median(count / max(r.cpu_seconds, 1e-3) for r in loa_runs),
                unit="receipts/CPU s",
                reference=statistics.median(count / max(r.cpu_seconds, 1e-3) for r in bare_runs),
                reference_name="bare ASGI app, same server and driver, group commit",
                better="higher",
            ),
            figures.Figure(
                benchmark="receipts",
                measure=f"p50 latency of those, {args.in_flight} in flight",
                value=statistics.median(r.quantile(0.5) for r in loa_runs),
                unit="ms",
                reference=statistics.median(r.quantile(0.5) for r in bare_runs),
                reference_name="bare ASGI app's p50",
                better="lower",
            ),
            figures.Figure(
                benchmark="receipts",
                measure=f"{count:,} receipts applied by one drainer",
                value=count / drained,
                unit="receipts/s",
                reference=count / bare_drained,
                reference_name="INSERT events + UPDATE … FROM, one transaction",
                better="higher",
            ),
            # The drainer is Python beside PostgreSQL, its reference PostgreSQL alone: their
            # wall-clock ratio moves with how the cores are shared (0.065 and 0.040 in two
            # runs); the CPU each spends does not.
            figures.Figure(
                benchmark="receipts",
                measure=f"{count:,} receipts applied per CPU second (drainer and PostgreSQL)",
                value=statistics.median(count / max(c, 1e-3) for c in DRAIN_CPU["loa"]),
                unit="receipts/CPU s",
                reference=statistics.median(count / max(c, 1e-3) for c in DRAIN_CPU["bare"]),
                reference_name="INSERT events + UPDATE … FROM, one transaction",
                better="higher",
            ),
        ]
    )


if __name__ == "__main__":
    main()
