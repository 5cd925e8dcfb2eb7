"""Arrival ingest speed and memory: events/s from a file, rules and dedupe included, with
100,000 and 1,000,000 distinct visitors, each run in a fresh child process (so each peak
RSS is that run's alone) into a fresh ledger, jobs going to an in-memory broker (the
ingest is measured, not the sending). Target (issue 7): at least 10,000 events/s; peak
RSS flat between the two sizes.

The files (cached under .cache/bench/) mix what a carrier's feed holds: foreign and
domestic visitors in bursts, residents flagged by the carrier, a few repeated event ids,
a few bad rows.

    uv run python -m benchmarks.arrivals                       # PostgreSQL
    uv run python -m benchmarks.arrivals --sqlite --sizes 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
RULES = ROOT / "examples" / "arrivals.toml"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
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
    started = time.perf_counter()
    result = Ingest(runtime, load_arrivals(RULES)).run(records(path, check_readable(path)))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = result.as_dict()
    print(json.dumps({
        "events": result.read, "seconds": round(seconds, 2),
        "events_per_s": round(result.read / seconds), "welcomed": figures["welcomed"],
        "skipped": figures["skipped_by_reason"], "rejected": figures["rejected_by_reason"],
        "peak_rss_mb": round(peak, 1),
    }))  # fmt: skip


def run(visitors: int, url: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.arrivals",
            "--child",
            str(events_file(visitors)),
            "--ledger",
            url,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return {"visitors": visitors, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    from tests.rig import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sqlite", action="store_true", help="the embedded ledger instead")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ledger)
        return
    results = []
    for size in args.sizes:
        events_file(size)  # not timed
        if args.sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run(size, f"sqlite:///{tmp}/ledger.db"))
        else:
            with scratch_database(args.postgres, "loa_bench") as url:
                results.append(run(size, url))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"{large['visitors']:,} visitors: {large['events_per_s']:,} events/s (target >= 10,000: "
            f"{'met' if large['events_per_s'] >= 10_000 else 'NOT met'}); peak RSS "
            f"{large['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB against {small['visitors']:,}"
        )


if __name__ == "__main__":
    main()
