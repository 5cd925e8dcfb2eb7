"""Arrival ingest speed and memory: events/s from a file, rules and dedupe included, with
100,000 and 1,000,000 distinct visitors, each run in a fresh child process (so each peak
RSS is that run's alone) into a fresh ledger, jobs going to an in-memory broker (the
ingest is measured, not the sending). Target (issue 7): at least 10,000 events/s; peak
RSS flat between the two sizes.

The files (cached under .cache/bench/) mix what a carrier's feed holds: foreign and
domestic visitors in bursts, residents flagged by the carrier, a few repeated event ids,
a few bad rows.

The reference (issue 25) is the same bare insert of the same events: the same file read
with the ``csv`` module and each of its rows, as read, written into the same kind of
ledger (a fresh PostgreSQL database through the same driver, or an SQLite file with the
ledger's pragmas) by one ``COPY`` (PostgreSQL) or ``executemany`` (SQLite) into a plain
table of the file's columns, in one transaction, in a child process of its own like the
ingest. That insert takes a twentieth of a second at the quick size, a few of a loaded
machine's time slices: it is rolled back and repeated until it fills a second
(``figures.autorange``), and its seconds are one insert's, the commit not counted. No parsing of numbers or times, no rules, no dedupe of event ids or visitors, no
campaign or queue: what is left is what any ingest of the file must do, with the same
parts (interpreter, csv, database, driver), so a busy machine slows both alike. Only the
work is timed in either child (not imports, ledger creation or migration); the two are
run in turn, reference first, and the medians compared.

    uv run python -m benchmarks.arrivals                       # PostgreSQL
    uv run python -m benchmarks.arrivals --sqlite --sizes 100000
    uv run python -m benchmarks.arrivals --quick               # 20,000 visitors, 3 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import figures
from benchmarks.cpu import Spent, spent_autorange, watch_database

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
RULES = ROOT / "examples" / "arrivals.toml"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BARE = "csv + executemany/COPY"
#: Mobile ranges and where each visitor's number starts in it (all valid numbers).
PREFIXES = [
    ("+8210", 20_000_000), ("+86138", 10_000_000), ("+7916", 2_000_000), ("+1415", 2_000_000),
    ("+4477", 10_000_000), ("+614", 12_000_000), ("+849", 10_000_000), ("+843", 20_000_000),
]  # fmt: skip


def events_file(visitors: int) -> Path:
    """A CSV of about ``visitors`` distinct visitors' arrivals over the last hour."""
    path = CACHE / f"arrivals-{visitors}.csv"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(visitors)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    areas = ["582", "584", "585", "586", "587", "588", "589"]
    with path.open("w", encoding="utf-8") as out:
        out.write("event_id,phone,arrived_at,area,home\n")
        for i in range(visitors):
            prefix, base = PREFIXES[i % len(PREFIXES)]
            phone = f"{prefix}{base + i}"
            at = (start + timedelta(seconds=i * 3600 // visitors)).isoformat()
            home = "1" if rng.random() < 0.05 else ""
            out.write(f"ev-{i},{phone},{at},{areas[i % 7]},{home}\n")
            if rng.random() < 0.01:  # the feed sent it twice
                out.write(f"ev-{i},{phone},{at},{areas[i % 7]},{home}\n")
            if rng.random() < 0.005:
                out.write(f"bad-{i},không rõ,{at},586,\n")
    return path


def child(path: Path, url: str) -> None:
    """Ingest ``path`` into the ledger at ``url`` and print the figures (child process)."""
    from dramatiq.brokers.stub import StubBroker
    from pydantic import SecretStr

    from campaigns.arrivals import load_arrivals
    from ledger.migrate import upgrade
    from worker.arrivals.inbox import check_readable, records
    from worker.arrivals.ingest import Ingest
    from worker.queues.broker import use_broker
    from worker.runtime import Runtime
    from worker.settings import Settings

    settings = Settings(database_url=SecretStr(url), log_level="WARNING")
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    use_broker(StubBroker(), settings)
    watch_database(url)  # a SQLite path's last part names no PostgreSQL database
    started = time.perf_counter()
    with Spent(os.getpid()) as spent:
        result = Ingest(runtime, load_arrivals(RULES)).run(records(path, check_readable(path)))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = result.as_dict()
    print(json.dumps({
        "events": result.read, "seconds": round(seconds, 2),
        "events_per_s": round(result.read / seconds), "welcomed": figures["welcomed"],
        "events_per_cpu_s": round(result.read / max(spent.seconds, 1e-3)),
        "skipped": figures["skipped_by_reason"], "rejected": figures["rejected_by_reason"],
        "peak_rss_mb": round(peak, 1),
    }))  # fmt: skip


def bare_child(path: Path, url: str) -> None:
    """The reference: the file's rows, as read, into a plain table (in a child process)."""
    import csv

    postgres = url.startswith("postgresql")
    if postgres:
        import psycopg

        conn: Any = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    else:
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE events (event_id text, phone text, arrived_at text, area text, home text)"
    )
    conn.commit()

    counted: list[int] = []

    def insert() -> None:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            columns = ", ".join(next(reader))
            if postgres:
                with (
                    conn.cursor() as cursor,
                    cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy,
                ):
                    for row in reader:
                        copy.write_row(row)
            else:
                conn.executemany(f"INSERT INTO events ({columns}) VALUES (?, ?, ?, ?, ?)", reader)
        counted.append(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        conn.rollback()  # undone: the next pass inserts into an empty table again

    # One pass of 20,000 rows is a twentieth of a second: repeated to fill a second.
    watch_database(url)
    cpu, seconds = spent_autorange(insert)
    events = counted[-1]
    conn.close()
    print(json.dumps({
        "events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds),
        "events_per_cpu_s": round(events / max(cpu, 1e-6)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))  # fmt: skip


def run(path: Path, url: str, *flags: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.arrivals",
            "--child",
            str(path),
            "--ledger",
            url,
            *flags,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(r[key] for r in results) if isinstance(value, int | float) else value
        for key, value in results[0].items()
    }


def measure(
    visitors: int, fresh: Callable[[], AbstractContextManager[str]], rounds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ingest and the bare insert, ``rounds`` times each in turn (reference first),
    each into a fresh ledger; returns the medians of each's figures (ingest, bare)."""
    path = events_file(visitors)
    ingests: list[dict[str, Any]] = []
    bares: list[dict[str, Any]] = []

    def subject() -> float:
        with fresh() as url:
            ingests.append(run(path, url))
        return ingests[-1]["events_per_s"]

    def reference() -> float:
        with fresh() as url:
            bares.append(run(path, url, "--bare"))
        return bares[-1]["events_per_s"]

    figures.interleaved(subject, reference, rounds)
    print(
        f"{visitors:,} visitors: events/s ingest {[r['events_per_s'] for r in ingests]}, "
        f"bare {[r['events_per_s'] for r in bares]}",
        flush=True,
    )
    return {"visitors": visitors, **medians(ingests)}, medians(bares)


def main() -> None:
    from tests.rig import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 visitors, 3 rounds")
    parser.add_argument("--sizes", type=int, nargs="+", help="visitors (100k and 1M)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, interleaved")
    parser.add_argument("--sqlite", action="store_true", help="the embedded ledger instead")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--db-prefix", default="loa_bench", help="scratch databases' prefix")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.bare:
            bare_child(args.child, args.ledger)
        else:
            child(args.child, args.ledger)
        return

    @contextmanager
    def sqlite() -> Iterator[str]:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/ledger.db"

    def postgres() -> AbstractContextManager[str]:
        return scratch_database(args.postgres, args.db_prefix)

    fresh = sqlite if args.sqlite else postgres
    ledger = "SQLite" if args.sqlite else "PostgreSQL"
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    for size in sizes:
        events_file(size)  # not timed
    results = []
    handed = []
    for size in sizes:
        ingest, bare = measure(size, fresh, args.rounds)
        results.append(ingest)
        print(json.dumps({**ingest, "bare": bare}, ensure_ascii=False), flush=True)
        handed.append(
            figures.Figure(
                benchmark="arrivals",
                measure=f"{size:,} visitors' events into {ledger}",
                value=ingest["events_per_s"],
                unit="events/s",
                reference=bare["events_per_s"],
                reference_name=BARE,
                better="higher",
            )
        )
        # The ingest is Python (numbers parsed, rules applied) beside the database, the
        # bare insert mostly the database: their wall-clock ratio moved by 30 % with how
        # a load shared the cores; the CPU each spends (this process and its PostgreSQL
        # backends) does not.
        handed.append(
            figures.Figure(
                benchmark="arrivals",
                measure=f"{size:,} visitors' events into {ledger}, per CPU second",
                value=ingest["events_per_cpu_s"],
                unit="events/CPU s",
                reference=bare["events_per_cpu_s"],
                reference_name=BARE,
                better="higher",
            )
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"{large['visitors']:,} visitors: {large['events_per_s']:,.0f} events/s (target >= 10,000: "
            f"{'met' if large['events_per_s'] >= 10_000 else 'NOT met'}); peak RSS "
            f"{large['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB against {small['visitors']:,}"
        )
    figures.report(handed)


if __name__ == "__main__":
    main()
