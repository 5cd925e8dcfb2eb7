"""``loa api`` read speed on PostgreSQL (issue #23): a campaign's status and one number's
history, over real HTTP, with a million messages in the ledger.

The ledger is written straight into a scratch database with ``generate_series`` (a
million messages and their events in well under a minute): ``--campaigns`` campaigns
recorded as a launch records them (``tests.helpers.record``), the newest and largest
(``--largest`` messages; by default an equal share) still running (three quarters
handed over, the rest queued), the others over; a realistic mix of final states
(delivered, undelivered, failed, a few still ``sent``); each message's events as the
workers and the receipts write them (queued -> sending -> sent -> delivered …). Every
campaign texted the same people, so one number (``NUMBER``) is in every campaign.

The real app (``scripts.api.app.make_app``) is served by uvicorn on a free port in a
thread; one keep-alive client asks, one request after another, after a warm-up, the
floor and the two routes in turn (floor, status, history, floor …) so that a passing load
falls on all three alike:

- ``GET /v1/campaigns/{id}`` of the largest campaign, as served (target: p99 under
  20 ms): counted once a second whoever asks, the last count served at once while a
  newer one is made (``scripts.api.standing``);
- a count itself (``scripts.api.campaigns.standing_of``, in this process, 50 in a row):
  one pass over the campaign's messages (``ledger.tally``), no target: what the served
  figure rests on, and what grows with the campaign;
- ``GET /v1/recipients/{number}/history`` of ``NUMBER`` (target: p99 under 50 ms);
- the reference, same run: ``GET /v1/providers``, an authenticated call that reads only
  the token and the halts: the framework and authentication floor, same server, client,
  connection and database. Each route's ratio to it (p50 over p50, in the table that
  ``benchmarks.figures`` prints) says what the route itself adds; the p99 targets are
  absolute, printed with their verdicts.

Printed: requests, requests a second, p50, p95, p99 and max in ms for each, PASS or FAIL
against the targets; then every SQL statement each route ran (caught from the engine
during one request), run again under ``EXPLAIN (ANALYZE, BUFFERS)``: its time, the rows
it read, and whether it read the messages or events by an index or scanned them
(``SCAN``: a sequential scan, or an index range of at least 10,000 rows).

    uv run python -m benchmarks.api                                  # 1,000,000 messages
    uv run python -m benchmarks.api --quick                          # 50,000, 150 requests
    uv run python -m benchmarks.api --messages 100000 --requests 200
    uv run python -m benchmarks.api --largest 910000                 # one of 910,000, 9 small
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "ruộng lúa xanh mướt chiều thu"
#: The number whose history is asked: row ``NUMBER_ROW`` of every campaign's list.
NUMBER_ROW = 4321
NUMBER = f"090{NUMBER_ROW:07d}"
#: p99 targets of issue #23, in ms.
TARGETS = {"status": 20.0, "history": 50.0}
#: What counts as a scan: a sequential scan of these, or an index range this long.
BIG_TABLES = ("messages", "events")
LONG_RANGE = 10_000

# One statement per table: every row derived from its place ``i`` in the list. The first
# ``done`` rows were handed over (claimed, then sent or failed), the rest are queued;
# the last ``fresh`` of those handed over still wait for their receipt.
MESSAGES = """
INSERT INTO messages (campaign_key, recipient, country, carrier, list_row, language, encoding,
    parts, batch, status, attempts, provider, fields, provider_message_id, error_code,
    claimed_at, handed_at, updated_at, sent_at, final_at)
SELECT :key, '+8490' || lpad(i::text, 7, '0'), 'VN', 'mobifone', i + 2, 'vi', 'UCS2',
    2, i / 500, status, (i < :done)::int, 'sandbox',
    json_build_array('Người ' || i, (ARRAY['Ninh Hải','Bác Ái','Ninh Phước','Ninh Sơn',
        'Phan Rang–Tháp Chàm','Thuận Bắc','Thuận Nam'])[1 + i % 7]),
    CASE WHEN status NOT IN ('queued', 'failed') THEN 'p' || :key || '-' || i END,
    CASE status WHEN 'undelivered' THEN '001' WHEN 'failed' THEN '108' END,
    CASE WHEN i < :done THEN at END, CASE WHEN i < :done THEN at END,
    CASE WHEN i < :done THEN at + interval '1 second' * (1 + i % 300) ELSE :created END,
    CASE WHEN status NOT IN ('queued', 'failed') THEN at + interval '0.2 second' END,
    CASE WHEN status IN ('delivered', 'undelivered') THEN at + interval '1 second' * (1 + i % 300)
         WHEN status = 'failed' THEN at + interval '0.2 second' END
FROM (
    SELECT i, :start + i * :step AS at,
        CASE WHEN i >= :done THEN 'queued' WHEN i >= :done - :fresh THEN 'sent'
             WHEN i % 100 < 88 THEN 'delivered' WHEN i % 100 < 94 THEN 'undelivered'
             WHEN i % 100 < 97 THEN 'failed' ELSE 'sent' END AS status
    FROM generate_series(0, :size - 1) AS i
) AS planned
"""
# As the workers write them (``ledger.messages._PG_CLAIM``, ``ledger.handover``) and the
# receipts (``ledger.receipts``), in the order they happened (the ids follow the times).
EVENTS = """
INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status, code, detail)
SELECT :campaign, message_id, at, source, from_status, to_status, code, detail FROM (
    SELECT id AS message_id, claimed_at AS at, 'worker' AS source, 'queued' AS from_status,
        'sending' AS to_status, NULL AS code, json_build_object('provider', provider) AS detail
        FROM messages WHERE campaign_key = :key AND claimed_at IS NOT NULL
    UNION ALL
    SELECT id, sent_at, 'worker', 'sending', 'sent', NULL, NULL FROM messages
        WHERE campaign_key = :key AND sent_at IS NOT NULL
    UNION ALL
    SELECT id, final_at, 'worker', 'sending', 'failed', error_code, NULL FROM messages
        WHERE campaign_key = :key AND status = 'failed'
    UNION ALL
    SELECT id, final_at, 'receipt', 'sent', status, error_code,
        json_build_object('received_at', final_at) FROM messages
        WHERE campaign_key = :key AND status IN ('delivered', 'undelivered')
) AS moves
ORDER BY at, message_id
"""


def sizes_of(messages: int, campaigns: int, largest: int | None) -> list[int]:
    """The campaigns' sizes, the largest first: ``largest`` (default: an equal share),
    the rest shared equally among the others."""
    if campaigns == 1:
        return [messages]
    first = largest or messages // campaigns
    rest = (messages - first) // (campaigns - 1)
    sizes = [first] + [rest] * (campaigns - 1)
    sizes[-1] += messages - sum(sizes)
    return sizes


def populate(url: str, sizes: list[int]) -> tuple[list[str], int]:
    """The campaigns (the first the newest, still running): their ids, and the events."""
    from campaigns.recipients import ListRow
    from campaigns.spec import load_spec
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from ledger.schema import campaigns, messages, now
    from tests.helpers import record

    engine = make_engine(url)
    upgrade(engine)
    example = load_spec(ROOT / "examples" / "bluezone.toml")
    moment = now()
    ids = []
    # The oldest first, as they were launched: the keys, ids and times in that order.
    for age, size in reversed(list(enumerate(sizes))):
        campaign_id = f"bench-api-{len(sizes) - age:02d}"
        spec = example.model_copy(update={"id": campaign_id})
        record(engine, spec, [ListRow(2, "0961234567", ("Người mẫu", "Ninh Hải"))], ["Họ tên"])
        created = moment - timedelta(days=7 * age, hours=2)
        running = age == 0
        # A campaign's sends over an hour from its launch; the running one's reach now.
        done = size * 3 // 4 if running else size
        step = timedelta(hours=1) / size
        start = moment - step * done if running else created + timedelta(minutes=1)
        with engine.begin() as conn:
            key = conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id))
            conn.execute(messages.delete().where(messages.c.campaign_key == key))
            conn.execute(
                campaigns.update().where(campaigns.c.key == key).values(created_at=created)
            )
            conn.execute(
                sa.text(MESSAGES),
                {
                    "key": key,
                    "size": size,
                    "done": done,
                    "fresh": size // 50 if running else 0,
                    "start": start,
                    "step": step,
                    "created": created,
                },
            )
            conn.execute(sa.text(EVENTS), {"key": key, "campaign": campaign_id})
        ids.append(campaign_id)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("campaigns", "messages", "events"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
        events = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
    engine.dispose()
    return ids[::-1], events


@contextmanager
def served(url: str, workdir: str, redis: str | None) -> Iterator[tuple[str, str, Any]]:
    """The API on the ledger at ``url``: (its base URL, an operator's token, its engine)."""
    from pydantic import SecretStr

    from ledger.api import accounts
    from scripts.api.app import make_app
    from tests.rig import serving
    from worker.runtime import Runtime
    from worker.settings import Settings

    settings = Settings(
        database_url=SecretStr(url),
        redis_url=SecretStr(redis) if redis else None,
        var_dir=Path(workdir),
        providers={"sandbox": {"type": "sandbox"}},
    )
    runtime = Runtime(settings)
    accounts.add_user(runtime.engine, "bench", "operator", PASSWORD)
    token = accounts.issue_token(runtime.engine, "bench", label="benchmark")[1]
    try:
        with serving(make_app(runtime, sends=False)) as base:
            yield base, token, runtime
    finally:
        runtime.close()


def timed(call: Callable[[], Any], count: int, warmup: int, budget: float) -> list[float]:
    """``count`` calls (ms each) after ``warmup`` untimed, or as many as ``budget`` seconds
    allow (at least 20)."""
    for _ in range(warmup):
        call()
    took: list[float] = []
    deadline = time.perf_counter() + budget
    while len(took) < count and (len(took) < 20 or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return took


def turns(
    calls: dict[str, Callable[[], Any]], count: int, warmup: int, budget: float
) -> dict[str, list[float]]:
    """``count`` calls of each (ms each), taken in turn (the floor, then each route, then
    the floor again …) so that a passing load falls on all alike, after ``warmup`` of
    each untimed; or as many turns as ``budget`` seconds a route allow (at least 20)."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    took: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + budget * len(calls)
    turn = 0
    while turn < count and (turn < 20 or time.perf_counter() < deadline):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            took[name].append((time.perf_counter() - started) * 1000)
        turn += 1
    return took


def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def caught(engine: sa.Engine, call: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SELECT statements (text, parameters) ``engine`` ran during ``call``."""
    seen: list[tuple[str, Any]] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def explained(engine: sa.Engine, statement: str, parameters: Any) -> tuple[float, list[str], bool]:
    """``statement`` under EXPLAIN (ANALYZE, BUFFERS) (no per-node timing, which would
    inflate it): its time in ms, what it read of the
    large tables (one line per scan), and whether any read is a scan."""
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {statement}", parameters
        ).scalar()
    top = (json.loads(found) if isinstance(found, str) else found)[0]
    reads, scan = [], False
    for node in nodes(top["Plan"]):
        table = node.get("Relation Name")
        if table not in BIG_TABLES:
            continue
        rows = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
        removed = int(node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1))
        kind = node["Node Type"]
        long = kind == "Seq Scan" or rows + removed >= LONG_RANGE
        scan = scan or long
        index = f" {node['Index Name']}" if "Index Name" in node else ""
        filtered = f", {removed:,} filtered out" if removed else ""
        reads.append(
            f"{'SCAN ' if long else ''}{kind} on {table}{index}: {rows:,} rows{filtered}, "
            f"{node.get('Shared Hit Blocks', 0) + node.get('Shared Read Blocks', 0):,} pages"
        )
    return top["Execution Time"], reads, scan


def report_queries(engine: sa.Engine, route: str, call: Callable[[], Any]) -> None:
    statements = caught(engine, call)
    total = 0.0
    print(f"\n{route}: {len(statements)} statements")
    for statement, parameters in statements:
        ms, reads, scan = explained(engine, statement, parameters)
        total += ms
        text = " ".join(statement.split())
        print(f"  {ms:8.2f} ms {'SCAN' if scan else 'ok  '} {text[:150]}")
        for read in reads:
            print(f"{'':18}{read}")
    print(f"  {total:8.2f} ms in the database, in all")


def main() -> None:
    from tests.rig import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="default 1,000,000 (--quick: 50,000)")
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--largest", type=int, help="messages in the largest campaign")
    parser.add_argument("--requests", type=int, help="timed, per route (default 500; --quick: 150)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--budget", type=float, default=120, help="seconds at most per route")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--prefix", default="loa_bench_api", help="of the scratch database")
    parser.add_argument("--redis", help="a Redis URL for the API (default: none, embedded)")
    parser.add_argument("--quick", action="store_true", help="small sizes, ~20 s in all")
    args = parser.parse_args()
    args.messages = args.messages or (50_000 if args.quick else 1_000_000)
    args.requests = args.requests or (150 if args.quick else 500)
    sizes = sizes_of(args.messages, args.campaigns, args.largest)
    if min(sizes) <= NUMBER_ROW:
        parser.error(
            f"--messages {args.messages:,} in {args.campaigns} campaigns: every campaign needs "
            f"more than {NUMBER_ROW:,} (the number asked for is on that row of each list)"
        )

    with (
        scratch_database(args.postgres, args.prefix) as url,
        tempfile.TemporaryDirectory(prefix="loa-api-bench-") as workdir,
    ):
        started = time.perf_counter()
        ids, events = populate(url, sizes)
        print(
            f"ledger: postgresql, {sum(sizes):,} messages in {len(sizes)} campaigns "
            f"(largest {sizes[0]:,}, running), {events:,} events, written in "
            f"{time.perf_counter() - started:.1f} s; {NUMBER} is in every campaign"
        )
        with served(url, workdir, args.redis) as (base, token, runtime):
            engine = runtime.engine
            import requests

            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            routes = {
                "floor": "/v1/providers",
                "status": f"/v1/campaigns/{ids[0]}",
                "history": f"/v1/recipients/{NUMBER}/history",
            }

            def getter(path: str) -> Callable[[], Any]:
                def get() -> Any:
                    answer = session.get(base + path, timeout=60)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text)
                    return answer.json()

                return get

            found = getter(routes["history"])()
            assert len(found["messages"]) == len(sizes), len(found["messages"])
            calls = {name: getter(path) for name, path in routes.items()}
            figures = turns(calls, args.requests, args.warmup, args.budget)
            floor = percentile(figures["floor"], 0.5)
            print(
                f"\n{'route':<8} {'path':<40} {'requests':>8} {'req/s':>7} {'p50':>8} "
                f"{'p95':>8} {'p99':>8} {'max':>8} {'p50/floor':>9}"
            )
            for name, took in figures.items():
                print(
                    f"{name:<8} {routes[name]:<40} {len(took):>8} "
                    f"{len(took) / (sum(took) / 1000):>7.1f} {percentile(took, 0.5):>8.2f} "
                    f"{percentile(took, 0.95):>8.2f} {percentile(took, 0.99):>8.2f} "
                    f"{max(took):>8.2f} {percentile(took, 0.5) / floor:>8.1f}x"
                )
            load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
            print(
                f"load average {load} on {os.cpu_count()} CPUs: a busy machine slows every "
                "route, the floor shows by how much"
            )
            # A count itself, as a request waits for one when none is fresh (in this
            # process, one after another: what the served figure rests on).
            from scripts.api.campaigns import standing_of

            counts = timed(lambda: standing_of(runtime, ids[0]), 50, 3, args.budget)
            print(
                f"a count of {sizes[0]:,} messages (standing_of, in-process): p50 "
                f"{percentile(counts, 0.5):.1f} ms, p99 {percentile(counts, 0.99):.1f} ms"
            )
            for name, target in TARGETS.items():
                p99 = percentile(figures[name], 0.99)
                verdict = "PASS" if p99 < target else "FAIL"
                print(f"{name}: p99 {p99:.1f} ms, target < {target:.0f} ms: {verdict}")
            for name in ("status", "history"):
                report_queries(engine, f"{name} {routes[name]}", getter(routes[name] + (
                    "?fresh=true" if name == "status" else "")))  # fmt: skip
    report_figures(figures, sizes, floor)


def report_figures(took: dict[str, list[float]], sizes: list[int], floor: float) -> None:
    """Each route's p50 beside the floor's, asked in turn with it (the p99 targets are
    absolute, printed above)."""
    from benchmarks import figures
    from benchmarks.figures import Figure

    what = {
        "status": f"GET a campaign's status ({sizes[0]:,} messages)",
        "history": f"GET one number's history ({len(sizes)} campaigns)",
    }

    def absolute(name: str) -> str:
        p99, target = percentile(took[name], 0.99), TARGETS[name]
        return f"p99 {p99:.1f} ms, target < {target:.0f} ms: {'met' if p99 < target else 'missed'}"

    figures.report(
        [
            Figure(benchmark="api", measure=f"{measure}, p50", value=percentile(took[name], 0.5),
                   unit="ms", reference=floor, reference_name="GET /v1/providers p50",
                   better="lower", absolute=absolute(name))
            for name, measure in what.items()
        ]
    )  # fmt: skip


if __name__ == "__main__":
    main()
