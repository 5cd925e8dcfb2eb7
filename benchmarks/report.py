"""Report speed and memory on PostgreSQL: ``loa report`` of a 100,000- and a
1,000,000-recipient campaign, each in a fresh child process (so each peak RSS is that
run's alone), in every format, and ``--daily`` over the day they were sent.

The campaigns are written straight into a scratch database with ``generate_series`` (a
million rows in seconds, not an hour of sending): realistic final states (delivered,
undelivered with carrier codes, failed, unknown, expired, a few still ``sent``), five
carriers and a foreign share, seven districts, sends over about an hour, deliveries a
few seconds to minutes later, and two events per sent message (sent, then final) for the
daily update. Target (issue 8): the report of the 1,000,000-recipient campaign in at
most 10 seconds, memory flat (the peak at 1,000,000 close to the peak at 100,000).

    uv run python -m benchmarks.report
    uv run python -m benchmarks.report --sizes 100000 --formats html
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DAY = "2026-11-20"  # the day the campaigns were sent, in Vietnam
COLUMNS = ["Họ và tên", "Huyện/Thành phố"]

# One statement per table: every row derived from its number ``i``.
MESSAGES = """
INSERT INTO messages (campaign_key, recipient, country, carrier, list_row, language, encoding,
    parts, batch, status, attempts, provider, fields, provider_message_id, error_code,
    updated_at, sent_at, final_at)
SELECT :key, recipient, country, carrier, i + 1, 'vi', 'UCS2', 1 + (i % 3 = 0)::int,
    i / 1000, status, 1, CASE WHEN i % 4 = 0 THEN 'backup' ELSE 'gateway' END,
    json_build_array('Người ' || i, (ARRAY['Ninh Hải','Bác Ái','Ninh Phước','Ninh Sơn',
        'Phan Rang–Tháp Chàm','Thuận Bắc','Thuận Nam'])[1 + i % 7]),
    CASE WHEN status <> 'failed' AND status <> 'expired' THEN 'p' || :key || '-' || i END,
    CASE status WHEN 'undelivered' THEN '001' WHEN 'failed' THEN '108' END,
    sent_at + interval '30 seconds', CASE WHEN status NOT IN ('failed', 'expired') THEN sent_at END,
    CASE WHEN status NOT IN ('sent') THEN sent_at + (i % 300) * interval '1 second' END
FROM (
    SELECT i,
        CASE WHEN i % 20 = 19 THEN '+8210' || lpad(i::text, 8, '0')
             ELSE '+849' || lpad((i + :key * 10000000)::text, 8, '0') END AS recipient,
        CASE WHEN i % 20 = 19 THEN 'KR' ELSE 'VN' END AS country,
        CASE WHEN i % 20 = 19 THEN NULL ELSE (ARRAY['viettel','vinaphone','mobifone',
            'vietnamobile','gmobile'])[1 + i % 5] END AS carrier,
        CASE WHEN i % 100 < 90 THEN 'delivered' WHEN i % 100 < 94 THEN 'undelivered'
             WHEN i % 100 < 96 THEN 'failed' WHEN i % 100 < 97 THEN 'unknown'
             WHEN i % 100 < 98 THEN 'expired' ELSE 'sent' END AS status,
        timestamptz '2026-11-20 01:00:00+00' + i * (interval '1 hour' / :size) AS sent_at
    FROM generate_series(0, :size - 1) AS i
) AS planned
"""
EVENTS = """
INSERT INTO events (campaign_id, message_id, at, source, from_status, to_status, code)
SELECT :campaign, id, sent_at, 'worker', 'sending', 'sent', NULL FROM messages
    WHERE campaign_key = :key AND sent_at IS NOT NULL
UNION ALL
SELECT :campaign, id, final_at, 'receipt', 'sent', status, error_code FROM messages
    WHERE campaign_key = :key AND sent_at IS NOT NULL AND status <> 'sent'
"""


def populate(url: str, size: int) -> str:
    """A campaign of ``size`` recipients; returns its id."""
    from campaigns.recipients import ListRow
    from campaigns.spec import load_spec
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from ledger.schema import campaigns, messages
    from tests.helpers import record

    campaign_id = f"bench-{size}"
    spec = load_spec(ROOT / "examples" / "bluezone.toml").model_copy(update={"id": campaign_id})
    engine = make_engine(url)
    upgrade(engine)
    record(engine, spec, [ListRow(2, "0961234567", ("Người mẫu", "Ninh Hải"))], COLUMNS)
    with engine.begin() as conn:
        key = conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id))
        conn.execute(messages.delete().where(messages.c.campaign_key == key))
        conn.execute(sa.text(MESSAGES), {"key": key, "size": size})
        conn.execute(sa.text(EVENTS), {"key": key, "campaign": campaign_id})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE messages")
        conn.exec_driver_sql("VACUUM ANALYZE events")
    engine.dispose()
    return campaign_id


def child(url: str, args: list[str]) -> None:
    """Run ``loa report ARGS`` in this process and print its time and peak RSS."""
    import os

    import typer

    os.environ["LOA_DATABASE_URL"] = url
    from scripts.cli import app

    started = time.perf_counter()
    try:
        typer.main.get_command(app)(["report", *args, "--json"], standalone_mode=False)
    except SystemExit as stop:
        if stop.code:
            raise
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1)}))


def measure(url: str, args: list[str]) -> dict[str, float]:
    """One report in a fresh process; the whole run timed from outside too."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--child", url, "--", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = round(time.perf_counter() - started, 2)
    return figures


def main() -> None:
    from tests.rig import scratch_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["html", "csv", "xlsx"])
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rest)
        return

    results = []
    with scratch_database(args.postgres, "loa_bench") as url, _workdir() as folder:
        out = Path(folder)
        for size in args.sizes:
            started = time.perf_counter()
            campaign = populate(url, size)
            print(f"{size:,} recipients written in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
            for fmt in args.formats:
                path = out / f"{campaign}.{fmt}"
                figures = measure(url, [campaign, "-f", fmt, "-o", str(path)])
                results.append({"recipients": size, "report": fmt, **figures})
                print(json.dumps(results[-1]), flush=True)
        daily = measure(url, ["--daily", DAY, "-f", "html", "-o", str(out / "daily.html")])
        results.append({"recipients": sum(args.sizes), "report": "daily html", **daily})
        print(json.dumps(results[-1]), flush=True)

    print(f"{'recipients':>11} {'report':<11} {'seconds':>8} {'process s':>9} {'peak RSS MB':>11}")
    for r in results:
        print(
            f"{r['recipients']:>11,} {r['report']:<11} {r['seconds']:>8} "
            f"{r['process_seconds']:>9} {r['peak_rss_mb']:>11}"
        )
    largest = max(args.sizes)
    for fmt in args.formats:
        runs = {r["recipients"]: r for r in results if r["report"] == fmt}
        if len(runs) >= 2:
            small, large = runs[min(runs)], runs[largest]
            print(
                f"{fmt}: {largest:,} recipients in {large['process_seconds']} s "
                f"(target <= 10 s: {'met' if large['process_seconds'] <= 10 else 'NOT met'}); "
                f"peak RSS {large['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB against "
                f"{min(runs):,}"
            )


def _workdir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="loa-report-bench-")


if __name__ == "__main__":
    main()
