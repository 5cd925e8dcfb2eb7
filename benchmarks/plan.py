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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    # A large list is planned in a child process (worker/campaign/pipeline.py): count it too.
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": round(peak, 1),
                "planner_process_rss_mb": round(child_peak, 1),
                "planned_in": "child process" if child_peak else "this process",
                "jobs": queued,
                "batches": launched.batches_enqueued,
            }
        )
    )


def run(rows: int, url: str, parallel: bool) -> dict[str, float]:
    path = list_file(rows)
    mode = ["--parallel"] if parallel else []
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.plan", "--child", str(path), "--ledger", url, *mode],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from tests.rig import scratch_database  # here: the measured child processes need none of it

    parser = argparse.ArgumentParser(description="Planning speed and memory.")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to measure too")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ledger, args.parallel)
        return

    runs: list[tuple[str, str, dict[str, float]]] = []
    for parallel in (False, True):
        mode = "planner process" if parallel else "one process"
        for rows in args.rows:
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(("sqlite", mode, run(rows, f"sqlite:///{tmp}/ledger.db", parallel)))
            if args.postgres:
                with scratch_database(args.postgres, "loa_bench") as url:
                    runs.append(("postgresql", mode, run(rows, url, parallel)))

    print(
        f"{'ledger':<11} {'planning':<16} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'RSS MB':>7} {'planner MB':>10}"
    )
    for backend, mode, r in runs:
        print(
            f"{backend:<11} {mode:<16} {r['rows']:>10,} {r['seconds']:>8} {r['rows_per_s']:>9,} "
            f"{r['peak_rss_mb']:>7} {r['planner_process_rss_mb']:>10}"
        )
    for backend in dict.fromkeys(b for b, _, _ in runs):
        for mode in dict.fromkeys(m for _, m, _ in runs):
            same = [r for b, m, r in runs if b == backend and m == mode]
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
    print(json.dumps([{"ledger": b, "planning": m, **r} for b, m, r in runs]))


if __name__ == "__main__":
    main()
