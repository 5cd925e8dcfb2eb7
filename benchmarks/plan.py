"""Planning speed and memory: plan + write to the ledger + enqueue, on a messy list.

For each size it generates a seeded list (~5 % duplicates, ~2 % invalid, every spelling of
numbers; cached under .cache/bench/), then launches it in a fresh child process (so each
peak RSS is that run's alone) into a fresh embedded ledger with the in-memory broker, and
prints rows/s and peak RSS. Targets (issue 3): >= 150,000 rows/s at 1,000,000 rows into
SQLite; peak RSS at 1,000,000 rows at most 50 MB above the one at 100,000 rows.

    uv run python -m benchmarks.plan                       # 100k and 1M rows, SQLite
    uv run python -m benchmarks.plan --postgres postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.generate_list import write as write_list

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
SPEC = ROOT / "examples" / "bluezone.toml"


def list_file(rows: int) -> Path:
    path = CACHE / f"messy-{rows}.csv"
    if not path.exists():
        write_list(path, rows, seed=rows, invalid=0.02, duplicates=0.05)
    return path


def child(path: Path, url: str) -> None:
    """Run one launch and print its figures as JSON (in the child process)."""
    from dramatiq.brokers.stub import StubBroker
    from pydantic import SecretStr

    from ledger.migrate import upgrade
    from worker.broker import use_broker
    from worker.launch import launch
    from worker.runtime import Runtime
    from worker.settings import Settings

    settings = Settings(database_url=SecretStr(url), log_level="WARNING")
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    broker = use_broker(StubBroker(), settings)
    started = time.perf_counter()
    launched = launch(runtime, SPEC, path)
    seconds = time.perf_counter() - started
    summary = runtime.engine
    del summary
    rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
    queued = sum(len(q.queue) for name, q in broker.queues.items() if not name.endswith(".DQ"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": round(peak, 1),
                "jobs": queued,
                "batches": launched.batches_enqueued,
            }
        )
    )


def run(rows: int, url: str) -> dict[str, float]:
    path = list_file(rows)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.plan", "--child", str(path), "--ledger", url],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def postgres_database(admin_url: str) -> tuple[str, object]:
    import sqlalchemy as sa

    from ledger.db import normalise_url

    admin = sa.create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"loa_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    url = normalise_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(description="Planning speed and memory.")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to measure too")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ledger)
        return

    results: dict[str, list[dict[str, float]]] = {"sqlite": []}
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"].append(run(rows, f"sqlite:///{tmp}/ledger.db"))
    if args.postgres:
        results["postgresql"] = []
        for rows in args.rows:
            url, drop = postgres_database(args.postgres)
            try:
                results["postgresql"].append(run(rows, url))
            finally:
                drop()  # type: ignore[operator]

    print(f"{'ledger':<11} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12}")
    for backend, runs in results.items():
        for r in runs:
            print(
                f"{backend:<11} {r['rows']:>10,} {r['seconds']:>8} {r['rows_per_s']:>9,} {r['peak_rss_mb']:>12}"
            )
        if len(runs) >= 2:
            growth = runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"]
            print(
                f"{backend}: peak RSS grows {growth:+.1f} MB from the smallest to the largest list"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
