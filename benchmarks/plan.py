"""Planning speed and memory: plan + write to the ledger + enqueue, on a messy list, beside
the bare pipeline that does the least the job needs.

For each size it generates a seeded list (~5 % duplicates, ~2 % invalid, every spelling of
numbers; cached under .cache/bench/), then launches it in a fresh child process (so each
peak RSS is that run's alone) into a fresh ledger with the in-memory broker, and prints
rows/s and peak RSS. Targets (issue 3): >= 150,000 rows/s at 1,000,000 rows into SQLite;
peak RSS at 1,000,000 rows at most 50 MB above the one at 100,000 rows.

The reference (issue 25) is the bare pipeline, run in a child process of its own like the
launch, into the same kind of ledger (an SQLite file with the ledger's pragmas, or a fresh
PostgreSQL database through the same driver): the same file read with the ``csv`` module,
each number normalised by Loa's own ``campaigns.phones.normalise`` (the fast path of one
number; Loa's planner is not used), duplicates dropped in a ``set``, and the same message
and reject rows written with one ``executemany`` (SQLite) or ``COPY`` (PostgreSQL) into
plain tables of the same columns, without indexes, in one transaction. No campaign file,
routing, templates, batching by provider, audit digests or queue: what is left is what no
planner can skip, so its rows/s is the floor Loa's rate is judged against, and since it
uses the same parts (interpreter, csv, normaliser, database, driver) a busy machine slows
both alike. Only the work is timed in either child (not imports, ledger creation or
migration); the two are run in turn, reference first, and the medians compared.

Lists of 4 MB and more are planned in a second process by Loa (``planner process``); the
reference stays one process, so the ``one process`` mode is the like-for-like one.

    uv run python -m benchmarks.plan                  # 100k and 1M rows, SQLite and PostgreSQL
    uv run python -m benchmarks.plan --no-postgres    # SQLite only
    uv run python -m benchmarks.plan --quick          # 100k rows, SQLite, one process
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import figures
from benchmarks.generate_list import write as write_list

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
SPEC = ROOT / "examples" / "bluezone.toml"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BARE = "csv + normalise + set + executemany/COPY"
#: The bare pipeline's tables: the columns Loa writes for a message and a rejected row.
BARE_TABLES = (
    "CREATE TABLE messages (campaign_key integer, recipient text, country text, carrier text, "
    "list_row integer, language text, encoding text, parts integer, batch integer, "
    "status text, provider text, fields text)",
    "CREATE TABLE rejects (campaign_key integer, list_row integer, reason text)",
)
MESSAGE_COLUMNS = (
    "campaign_key, recipient, country, carrier, list_row, language, encoding, parts, batch, "
    "status, provider, fields"
)


def list_file(rows: int) -> Path:
    path = CACHE / f"messy-{rows}.csv"
    if not path.exists():
        write_list(path, rows, seed=rows, invalid=0.02, duplicates=0.05)
    return path


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB -> MiB on Linux


def child(path: Path, url: str, parallel: bool) -> None:
    """Run one launch and print its figures as JSON (in the child process)."""
    from dramatiq.brokers.stub import StubBroker
    from pydantic import SecretStr

    from ledger.migrate import upgrade
    from worker.campaign.launch import launch
    from worker.queues.broker import use_broker
    from worker.runtime import Runtime
    from worker.settings import Settings

    settings = Settings(database_url=SecretStr(url), log_level="WARNING")
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    broker = use_broker(StubBroker(), settings)
    started = time.perf_counter()
    launched = launch(runtime, SPEC, path, parallel=parallel)
    seconds = time.perf_counter() - started
    rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
    queued = sum(len(q.queue) for name, q in broker.queues.items() if not name.endswith(".DQ"))
    # A large list is planned in a child process (worker/campaign/pipeline.py): count it too.
    planner = peak_mb(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": round(peak_mb(), 1),
                "planner_process_rss_mb": round(planner, 1),
                "planned_in": "child process" if planner else "this process",
                "jobs": queued,
                "batches": launched.batches_enqueued,
            }
        )
    )


def bare_child(path: Path, url: str) -> None:
    """The reference: the bare pipeline into the ledger at ``url`` (in a child process).

    Loa's list reader also finds the phone column by its header and checks encodings and
    damage; here the column is known. Loa works out the text's encoding and parts once per
    template: here they are constants. The other cells go as a JSON array, by the same fast
    path Loa takes (a join when no cell needs escaping)."""
    import csv
    import re

    from campaigns.phones import PhoneRejected, normalise

    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    needs_escape = re.compile(r'["\\\x00-\x1f]').search
    postgres = url.startswith("postgresql")
    if postgres:
        import psycopg

        conn: Any = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    else:
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    for statement in BARE_TABLES:
        conn.execute(statement)
    conn.commit()

    started = time.perf_counter()
    seen: set[str] = set()
    planned: list[tuple[Any, ...]] = []
    rejected: list[tuple[int, int, str]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        phone_at = header.index("Số điện thoại")
        read = 0
        for read, cells in enumerate(reader, start=2):
            raw = cells.pop(phone_at)
            try:
                number, country, carrier, _ = normalise(raw)
            except PhoneRejected as refused:
                rejected.append((1, read, refused.reason.value))
                continue
            if number in seen:
                rejected.append((1, read, "duplicate"))
                continue
            seen.add(number)
            fields = (
                encode(cells) if needs_escape("".join(cells)) else '["' + '","'.join(cells) + '"]'
            )
            batch = len(planned) // 200 + 1
            planned.append(
                (1, number, country, carrier, read, "vi", "ucs2", 3, batch, "queued", "sandbox", fields)
            )  # fmt: skip
    if postgres:
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY messages ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
                for row in planned:
                    copy.write_row(row)
            with cursor.copy("COPY rejects (campaign_key, list_row, reason) FROM STDIN") as copy:
                for row in rejected:
                    copy.write_row(row)
    else:
        conn.executemany(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 12)})", planned
        )
        conn.executemany("INSERT INTO rejects VALUES (?, ?, ?)", rejected)
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    rows = read - 1
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": round(peak_mb(), 1),
                "planned": len(planned),
                "rejected": len(rejected),
            }
        )
    )


def run(path: Path, url: str, *flags: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.plan", "--child", str(path), "--ledger", url, *flags],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def answers(url: str) -> bool:
    """Whether a PostgreSQL server listens at ``url``'s host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


def ledgers(postgres: str | None, prefix: str) -> dict[str, Callable[[], Any]]:
    """Each ledger measured, as a factory of a fresh ledger URL (a context manager)."""
    from tests.rig import scratch_database  # here: the measured children need none of it

    @contextmanager
    def sqlite() -> Iterator[str]:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/ledger.db"

    made: dict[str, Callable[[], Any]] = {"sqlite": sqlite}
    if postgres:

        def postgresql() -> Any:
            return scratch_database(postgres, prefix)

        made["postgresql"] = postgresql
    return made


def measure(
    rows: int, fresh: Callable[[], Any], parallel: bool, rounds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The launch and the bare pipeline, ``rounds`` times each in turn (reference first),
    each into a fresh ledger; returns the medians of each's figures (launch, bare)."""
    path = list_file(rows)
    launches: list[dict[str, Any]] = []
    bares: list[dict[str, Any]] = []

    def subject() -> float:
        with fresh() as url:
            launches.append(run(path, url, *(["--parallel"] if parallel else [])))
        return launches[-1]["rows_per_s"]

    def reference() -> float:
        with fresh() as url:
            bares.append(run(path, url, "--bare"))
        return bares[-1]["rows_per_s"]

    figures.interleaved(subject, reference, rounds)
    print(
        f"{rows:,} rows, {fresh.__name__}, {'planner process' if parallel else 'one process'}: "
        f"rows/s launch {[r['rows_per_s'] for r in launches]}, bare {[r['rows_per_s'] for r in bares]}",
        flush=True,
    )
    return medians(launches), medians(bares)


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(r[key] for r in results) if isinstance(value, int | float) else value
        for key, value in results[0].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Planning speed and memory.")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, SQLite, one process")
    parser.add_argument("--rows", type=int, nargs="+", help="list sizes (100k and 1M)")
    parser.add_argument("--rounds", type=int, help="runs of each, interleaved (3; quick 3)")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_URL,
        help="admin URL of a PostgreSQL server, measured too when it answers (full mode)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--db-prefix", default="loa_bench", help="scratch databases' prefix")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.bare:
            bare_child(args.child, args.ledger)
        else:
            child(args.child, args.ledger, args.parallel)
        return

    sizes = args.rows or ([100_000] if args.quick else [100_000, 1_000_000])
    rounds = args.rounds or 3
    modes = (False,) if args.quick else (False, True)
    postgres = None
    if not (args.quick or args.no_postgres):
        postgres = args.postgres if answers(args.postgres) else None
        if postgres is None:
            print(f"PostgreSQL does not answer at {args.postgres}: SQLite only")
    for size in sizes:
        list_file(size)  # not timed

    runs: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for parallel in modes:
        mode = "planner process" if parallel else "one process"
        for rows in sizes:
            for backend, fresh in ledgers(postgres, args.db_prefix).items():
                launch, bare = measure(rows, fresh, parallel, rounds)
                runs.append((backend, mode, launch, bare))

    print(f"medians of {rounds} runs each, launch and bare pipeline in turn")
    print(
        f"{'ledger':<11} {'planning':<16} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'RSS MB':>7} "
        f"{'planner MB':>10} {'bare s':>7} {'bare rows/s':>11} {'bare MB':>7}"
    )
    for backend, mode, r, b in runs:
        print(
            f"{backend:<11} {mode:<16} {r['rows']:>10,} {r['seconds']:>8.2f} {r['rows_per_s']:>9,.0f} "
            f"{r['peak_rss_mb']:>7} {r['planner_process_rss_mb']:>10} {b['seconds']:>7.2f} "
            f"{b['rows_per_s']:>11,.0f} {b['peak_rss_mb']:>7}"
        )
    for backend in dict.fromkeys(b for b, _, _, _ in runs):
        for mode in dict.fromkeys(m for _, m, _, _ in runs):
            same = [r for b, m, r, _ in runs if b == backend and m == mode]
            if len(same) >= 2:
                small, large = same[0], same[-1]
                grow = (
                    large["peak_rss_mb"] - small["peak_rss_mb"],
                    large["planner_process_rss_mb"] - small["planner_process_rss_mb"],
                )
                print(
                    f"{backend}, {mode}: {large['rows']:,} rows vs {small['rows']:,}: speed x{large['rows_per_s'] / small['rows_per_s']:.2f}, "
                    f"peak RSS {grow[0]:+.1f} MB (planner process {grow[1]:+.1f} MB)"
                )
    print(json.dumps([{"ledger": b, "planning": m, **r} for b, m, r, _ in runs]))

    handed: list[figures.Figure] = []
    for backend, mode, r, b in runs:
        what = (
            f"{r['rows']:,} rows into {'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {mode}"
        )
        handed.append(
            figures.Figure(
                benchmark="plan",
                measure=what,
                value=r["rows_per_s"],
                unit="rows/s",
                reference=b["rows_per_s"],
                reference_name=BARE,
                better="higher",
            )
        )
        # Both processes' peaks when a planner process is used: the launch needs both.
        handed.append(
            figures.Figure(
                benchmark="plan",
                measure=f"peak RSS, {what}",
                value=r["peak_rss_mb"] + r["planner_process_rss_mb"],
                unit="MB",
                reference=b["peak_rss_mb"],
                reference_name="bare pipeline's peak RSS",
                better="lower",
            )
        )
    figures.report(handed)


if __name__ == "__main__":
    main()
