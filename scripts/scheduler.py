"""``loa scheduler``: the jobs that run on the clock (``worker.upkeep.scheduler``)."""

from __future__ import annotations

import signal
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from scripts.common import ledger_runtime, settings
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail


def write_daily(runtime: Any, day: date, folder: Path) -> Path:
    """The day's update as `loa report --daily DAY --format html` writes it, in
    Vietnamese, into ``folder`` (made 0700 if absent); returns the report's path. The
    report is written under a fresh private name and renamed when complete, so a reader
    never sees half a report and nothing planted beside it is followed.

    Raises:
        OSError: the folder or the report cannot be written.
    """
    from campaigns.files import atomic_private, private_folder
    from scripts.reports.command import LABELS, Format, write_daily_report

    path = private_folder(folder) / f"bao-cao-ngay-{day.isoformat()}.html"
    with atomic_private(path) as handle:
        write_daily_report(
            runtime, day.isoformat(), Format.HTML, LABELS["vi"], handle, verify_now=False
        )
    return path


def scheduler(
    inbox: Annotated[
        Path | None, typer.Option(help="An arrivals inbox folder to poll (with --rules).")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option("--rules", "-r", help="The arrivals rules file.")
    ] = None,
    reports: Annotated[
        Path | None,
        typer.Option(help="Where to write yesterday's daily report at 06:00 (Vietnam)."),
    ] = None,
    poll: Annotated[float, typer.Option(min=1, help="Seconds between looks at the inbox.")] = 30.0,
    lock_seconds: Annotated[
        float,
        typer.Option(
            min=1,
            help="Leadership lock's time to live: a standby takes over this long after the leader stops.",
        ),
    ] = 30.0,
) -> None:
    """Run the clock's jobs in one active process: poll the arrivals inbox (and remove its
    processed files older than LOA_RETENTION_DAYS, once a day), seal the audit log,
    finalise receipts, write the daily report. Start one on each of two machines: with
    Redis, one leads (a lock) and the other stands by, taking over within a minute if the
    first dies; the log says which (INFO: `scheduler.leading`; `scheduler.standby` once,
    naming the lock's holder; `scheduler.took_over`). Stops on Ctrl-C or SIGTERM."""
    from campaigns.arrivals import load_arrivals
    from worker.upkeep.scheduler import Leadership, Plan, run

    if (inbox is None) != (rules is None):
        fail("--inbox and --rules go together (the rules decide the inbox's welcomes)", BAD_INPUT)
    if inbox is not None and not inbox.is_dir():
        fail(f"{inbox}: not a folder", BAD_INPUT)
    loaded = settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        if rules is not None:
            load_arrivals(rules)  # a bad rules file is named now, not at the first poll
        plan = Plan(
            inbox=inbox,
            rules=rules,
            reports=reports,
            write_daily=write_daily,
            poll_seconds=poll,
            keep_files=timedelta(days=loaded.retention_days),  # done/ and failed/, daily
        )
        leadership = None
        if loaded.redis_url is not None:
            import redis

            client = redis.Redis.from_url(loaded.redis_url.get_secret_value())
            leadership = Leadership(client, f"{loaded.redis_namespace}:scheduler", lock_seconds)
        run(runtime, plan, stop, leadership)
