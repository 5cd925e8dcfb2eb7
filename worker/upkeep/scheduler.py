"""``loa scheduler``: the jobs that run on the clock, in one active process.

While it leads, the scheduler (APScheduler) starts the campaigns launched with ``--at``
when their time comes, polls the arrivals inbox (and once a day removes its processed
files past the retention period), runs the receipt finaliser and the audit
sealer, and writes the daily report (yesterday's, at 06:00 in
Vietnam). Leading is a Redis lock (``SET NX PX`` with this process's token, renewed every
third of its time to live by a compare-and-extend script): a second scheduler stands by,
trying for the lock as often, and takes over once the first stops renewing, within the
lock's time to live plus one try (30 s + 10 s by default: well within a minute). A leader
that fails to renew (Redis away, the process stalled) stops its jobs at once, so two
never run them together. Without Redis there is one process and no lock. The log says
who leads: ``scheduler.leading``; on a standby, once, ``scheduler.standby`` naming the
lock's holder (again only when the holder changes), then ``scheduler.took_over``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from worker.logging import get_logger
from worker.runtime import Runtime

log = get_logger("loa.scheduler")

# Extend the lock only if it is still ours (it may have expired and been taken).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Plan:
    """What the scheduler does, from ``loa scheduler``'s options. ``write_daily(runtime,
    day, folder)`` writes a day's report (the command line's, which owns the report's
    words and page) and returns its file."""

    inbox: Path | None = None
    rules: Path | None = None
    reports: Path | None = None
    write_daily: Callable[[Runtime, date, Path], Path] | None = None
    poll_seconds: float = 30.0
    settle_seconds: float = 5.0
    #: How long the inbox's processed files (``done/``, ``failed/``) are kept: removed
    #: once a day after that (``worker.upkeep.retention``); ``None`` keeps them.
    keep_files: timedelta | None = None


class Leadership:
    """The Redis lock that makes one scheduler active. ``token`` names this process
    (host, pid, random) so operators can see who leads: ``GET <namespace>:scheduler``."""

    def __init__(self, client: Any, key: str, ttl_seconds: float) -> None:
        self.client, self.key, self.ttl_ms = client, key, int(ttl_seconds * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """Take the lock, or keep it if ours; whether this process leads now."""
        try:
            if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
                return True
            return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except Exception as exc:  # Redis away: lead nothing until it answers
            log.warning("scheduler.lock_unavailable", error=type(exc).__name__)
            return False

    def release(self) -> None:
        with contextlib.suppress(Exception):  # expiring by itself is fine too
            self._release(keys=[self.key], args=[self.token])

    def holder(self) -> str | None:
        """The token of the process holding the lock (``host:pid:random``), or ``None``
        when nobody holds it or Redis does not answer."""
        try:
            token = self.client.get(self.key)
        except Exception:  # only said in a log line: hold() reports Redis away
            return None
        return token.decode(errors="replace") if isinstance(token, bytes) else token


def jobs(runtime: Runtime, plan: Plan) -> list[tuple[str, Callable[[], object], dict[str, Any]]]:
    """(name, function, APScheduler trigger arguments) for each job of ``plan``."""
    from campaigns.hours import VIETNAM
    from ledger.chain import seal
    from worker.campaign.control import start_scheduled
    from worker.upkeep.housekeeping import finalise_now
    from worker.upkeep.retention import remove_old_files

    found: list[tuple[str, Callable[[], object], dict[str, Any]]] = [
        ("sealer", lambda: seal(runtime.engine, wait=False), {"trigger": "interval", "seconds": 2}),
        ("finaliser", lambda: finalise_now(runtime), {"trigger": "interval", "minutes": 5}),
        ("starts", lambda: start_scheduled(runtime), {"trigger": "interval", "seconds": 15}),
    ]
    if plan.inbox is not None and plan.rules is not None:
        found.append(
            (
                "inbox",
                lambda: poll_inbox(runtime, plan),
                {"trigger": "interval", "seconds": plan.poll_seconds},
            )
        )
    if plan.inbox is not None and plan.keep_files is not None:
        inbox, keep = plan.inbox, plan.keep_files
        found.append(
            (
                "inbox-retention",
                lambda: remove_old_files([inbox], keep),
                # Once a day, and once as soon as this process leads.
                {"trigger": "interval", "hours": 24, "next_run_time": datetime.now(VIETNAM)},
            )
        )
    if plan.reports is not None and plan.write_daily is not None:
        write, folder = plan.write_daily, plan.reports
        found.append(
            (
                "daily-report",
                lambda: write(runtime, yesterday(), folder),
                {"trigger": "cron", "hour": 6, "minute": 0},
            )
        )
    return found


def poll_inbox(runtime: Runtime, plan: Plan) -> list[str]:
    """Take the inbox's ready files; returns their names."""
    from campaigns.arrivals import load_arrivals
    from worker.arrivals.inbox import ready, take
    from worker.arrivals.ingest import Ingest

    assert plan.inbox is not None and plan.rules is not None
    files = ready(plan.inbox, plan.settle_seconds)
    if not files:
        return []
    ingest = Ingest(runtime, load_arrivals(plan.rules))
    return [take(ingest, path).path.name for path in files]


def yesterday() -> date:
    """Yesterday in Vietnam: the day a 06:00 daily report covers."""
    from campaigns.hours import VIETNAM

    return datetime.now(VIETNAM).date() - timedelta(days=1)


def run(runtime: Runtime, plan: Plan, stop: threading.Event, leadership: Leadership | None) -> None:
    """Until ``stop``: lead when the lock allows (always, without Redis), run the jobs
    while leading, stand by otherwise."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from campaigns.hours import VIETNAM

    scheduler: BackgroundScheduler | None = None
    every = leadership.ttl_ms / 3000 if leadership else 3600.0
    standby = _Standby(leadership) if leadership else None
    try:
        while True:
            leading = leadership.hold() if leadership else True
            if leading and scheduler is None:
                scheduler = BackgroundScheduler(timezone=VIETNAM)
                for name, function, trigger in jobs(runtime, plan):
                    scheduler.add_job(
                        _logged(name, function), id=name, max_instances=1, coalesce=True, **trigger
                    )
                scheduler.start()
                took_over = standby.ended() if standby else None
                token = leadership.token if leadership else "embedded"
                if took_over is None:
                    log.info("scheduler.leading", token=token)
                else:
                    log.info("scheduler.took_over", token=token, previous=took_over)
            elif not leading and scheduler is not None:
                scheduler.shutdown(wait=False)  # someone else leads now: stop at once
                scheduler = None
                log.warning("scheduler.lost_the_lead", token=leadership.token if leadership else "")
            if not leading and standby is not None:
                standby.note()
            if stop.wait(every):
                return
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        if leadership is not None:
            leadership.release()


class _Standby:
    """What a scheduler that does not lead says: once when it starts standing by, naming
    the lock's holder (and again only if another process takes the lock), and, through
    ``ended``, whom it took over from. Nothing at each try in between."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership
        self.holder: str | None = None  # the holder last named, while standing by
        self.standing_by = False

    def note(self) -> None:
        """Called at each try that did not lead."""
        holder = self.leadership.holder()
        if self.standing_by and (holder is None or holder == self.holder):
            return  # the same leader (or the lock between two): said already
        self.standing_by, self.holder = True, holder or self.holder
        log.info(
            "scheduler.standby",
            holder=holder or "nobody (Redis away, or the lock just expired)",
            lock=self.leadership.key,
            # The holder gone, this process leads within the lock's life and one try.
            lock_seconds=self.leadership.ttl_ms / 1000,
            token=self.leadership.token,
        )

    def ended(self) -> str | None:
        """This process leads now: whom it took over from (``None`` if it never stood by)."""
        if not self.standing_by:
            return None
        previous = self.holder or "nobody"
        self.standing_by, self.holder = False, None
        return previous


def _logged(name: str, function: Callable[[], object]) -> Callable[[], None]:
    def job() -> None:
        try:
            function()
        except Exception as exc:  # the next run tries again
            log.warning(f"scheduler.{name}_failed", error=type(exc).__name__)

    return job
