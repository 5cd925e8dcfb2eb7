"""Where the API's jobs run (``ledger.api.jobs``): a few threads of the ``loa api``
process, so a request that starts a plan of a million rows answers at once (202 and the
job) and the work goes on beside the requests.

Each job has a private folder (0700, ``LOA_VAR_DIR/api/JOB``) for its uploads, removed
when it ends, and its download (a report, an export), removed a day after. The job acts
as the account that started it: the events it writes (a launch) say ``api:NAME``.

Why threads, not ``loa worker``: the uploaded files are on this machine, and every job is
a few long database conversations, not CPU work; the ledger (not this process) keeps the
state, so another API process answers for a job as well as this one.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from campaigns.files import private_folder
from ledger.api import jobs
from ledger.api.jobs import JobRecord
from ledger.audit.actions import ACTING_AS
from scripts.api.problems import Problem
from scripts.api.refusals import as_problem, refusal
from worker.logging import get_logger

log = get_logger("loa.api.jobs")

#: How long a finished job's download is kept.
KEEP_FILES = timedelta(days=1)
#: At most one progress write per job this often (seconds): the ledger is not a counter.
TICK_EVERY = 0.5
#: Jobs that change the ledger (an operator's): their own threads, so that reports and
#: verifications (anyone's, long) never hold a launch up.
CHANGES = frozenset({"plan", "launch", "suppressions"})
#: Jobs one account may have queued or running at once (beyond: 429).
OPEN_PER_ACCOUNT = 4


class Running:
    """What a job's work is handed: ``tick`` its progress, ``output`` its download."""

    def __init__(self, engine: Engine, record: JobRecord, folder: Path) -> None:
        self.engine, self.record, self.folder = engine, record, folder
        self.done = 0
        self.file: Path | None = None
        self._told = time.monotonic()
        #: SQLite has one writer: a launch ticks from inside its own transaction, which
        #: holds the lock a progress write from this thread would wait for (a minute, then
        #: "database is locked" and the launch lost). There the runner's beat writes it.
        self.writes = engine.dialect.name != "sqlite"

    def tick(self, count: int = 1) -> None:
        """``count`` more units (rows, events) done; written now and then."""
        self.done += count
        if self.writes and time.monotonic() - self._told >= TICK_EVERY:
            self._told = time.monotonic()
            jobs.advance(self.engine, self.record.id, self.done)

    def output(self, name: str) -> Path:
        """Where to write the job's download, named ``name`` (a plain file name)."""
        self.file = self.folder / Path(name).name
        return self.file


#: A job's work: given its ``Running``, returns its result (JSON-able).
Work = Callable[[Running], dict[str, Any]]


class JobRunner:
    """Runs jobs on ``workers`` threads; their records in ``engine``'s ledger, their
    files under ``folder``."""

    def __init__(self, engine: Engine, folder: Path, workers: int = 2) -> None:
        self.engine, self.folder = engine, folder
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._pools = {
            True: ThreadPoolExecutor(workers, thread_name_prefix="loa-job-change"),
            False: ThreadPoolExecutor(workers, thread_name_prefix="loa-job-read"),
        }
        self._live: set[str] = set()
        #: The jobs running here, whose progress the beat writes where they cannot.
        self._running: dict[str, Running] = {}
        #: Jobs not begun yet: their future, their uploads.
        self._waiting: dict[str, tuple[Future[None], Path | None]] = {}
        self._lock = threading.Lock()
        #: Held while a job is counted against its account's cap and opened.
        self._opening = threading.Lock()
        self._stop = threading.Event()
        self._beating = threading.Thread(target=self._beat, name="loa-job-beat", daemon=True)
        self._beating.start()
        self._sweep_orphans()

    def staging(self) -> Path:
        """A fresh private folder for a request's uploads, handed to ``submit``."""
        import secrets

        # Named by this process: what a killed one left is known as its own (``_sweep``).
        return private_folder(self.folder / "uploads" / f"{os.getpid()}-{secrets.token_hex(8)}")

    def submit(
        self,
        kind: str,
        account: str,
        work: Work,
        *,
        key: str | None = None,
        unit: str = "rows",
        uploads: Path | None = None,
        names: dict[str, str] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Open a job and run ``work`` in it, or hand back the open job with ``key``
        (``created`` False; ``work`` does not run, ``uploads`` are removed).

        Parameters:
            uploads: the request's staging folder, removed when the job ends.
            names: private paths → the names the caller gave (for error messages).
        """
        self._forget_old_files()
        # Counted and opened as one step: requests sent at once all counted the jobs
        # before any was opened (thirty reports at once opened nine). Across processes
        # the cap is per process at worst.
        with self._opening:
            if jobs.open_count(self.engine, account) >= OPEN_PER_ACCOUNT:
                remove_folder(uploads)
                raise Problem(429, f"{account} has {OPEN_PER_ACCOUNT} jobs queued or running "
                              "already: wait for one to end", "too-many-jobs", retry_after=5)  # fmt: skip
            record, created = jobs.open_job(self.engine, kind, account, key, unit)
        if not created:
            remove_folder(uploads)
            return record, False
        with self._lock:  # beaten while it waits its turn, as while it runs
            self._live.add(record.id)
            pool = self._pools[kind in CHANGES]
            future = pool.submit(self._run, record, work, uploads, names)
            self._waiting[record.id] = (future, uploads)
        return record, True

    def _run(
        self, record: JobRecord, work: Work, uploads: Path | None, names: dict[str, str] | None
    ) -> None:
        with self._lock:
            self._waiting.pop(record.id, None)
        ACTING_AS.set(f"api:{record.account}")
        folder = private_folder(self.folder / "jobs" / record.id)
        running, kept = Running(self.engine, record, folder), False
        with self._lock:
            self._running[record.id] = running
        try:
            if jobs.start(self.engine, record.id, self.name):
                result = work(running)
                file = str(running.file) if running.file is not None else None
                kept = jobs.finish(self.engine, record.id, result, file, running.done)
                kept = kept and file is not None
                log.info("job.done", job=record.id, kind=record.kind, done=running.done)
        except BaseException as exc:  # a job's end, whatever it is, is written
            if refusal(exc) is None:
                log.error("job.failed", job=record.id, kind=record.kind,
                          error=type(exc).__name__, exc_info=True)  # fmt: skip
            jobs.fail(self.engine, record.id, as_problem(exc, names), running.done)
        finally:
            with self._lock:
                self._live.discard(record.id)
                self._running.pop(record.id, None)
            remove_folder(uploads)
            if not kept:  # a failed job has no download; half a report is never served
                remove_folder(folder)

    def _beat(self) -> None:
        while not self._stop.wait(jobs.BEAT.total_seconds()):
            with self._lock:
                live = list(self._live)
                quiet = [r for r in self._running.values() if not r.writes and r.done]
            try:
                jobs.beat(self.engine, live)
                for running in quiet:  # waits, on SQLite, for a launch's transaction
                    jobs.advance(self.engine, running.record.id, running.done)
            except Exception as exc:  # the ledger away for a while: the next beat
                log.warning("job.beat_failed", error=type(exc).__name__)

    def _sweep_orphans(self) -> None:
        """Remove what a process killed mid-job left (``kill -9``: no ``finally`` ran):
        uploads of a process no longer alive, and job folders whose job holds no file
        (it failed, or never ended). Lists with whole numbers must not outlive their job."""
        for folder in _folders(self.folder / "uploads"):
            owner = folder.name.split("-", 1)[0]
            if not owner.isdigit() or not _alive(int(owner)):
                remove_folder(folder)
        for folder in _folders(self.folder / "jobs"):
            found = jobs.get(self.engine, folder.name)
            kept = found is not None and found.file is not None and found.state == "done"
            if not kept and (found is None or found.finished):
                remove_folder(folder)

    def _forget_old_files(self) -> None:
        self._sweep_orphans()
        for job_id, file in jobs.stale_files(self.engine, KEEP_FILES):
            remove_folder(Path(file).parent)
            jobs.forget_file(self.engine, job_id)

    def stop(self) -> None:
        """Take no more jobs; those still waiting their turn end ``interrupted`` at once
        (their uploads removed), those running go on."""
        self._stop.set()
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for job_id, (future, uploads) in waiting.items():
            if future.cancel():
                remove_folder(uploads)
                with self._lock:
                    self._live.discard(job_id)
                jobs.fail(self.engine, job_id, jobs.interrupted("the API stopped before "
                          "this job began"), 0)  # fmt: skip

    def close(self) -> None:
        """``stop``, then wait for the running jobs to end (a launch is never cut mid-way
        by a clean stop)."""
        self.stop()
        for pool in self._pools.values():
            pool.shutdown(wait=True)


def _folders(parent: Path) -> list[Path]:
    try:
        return [path for path in parent.iterdir() if path.is_dir() and not path.is_symlink()]
    except OSError:  # not made yet
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def remove_folder(folder: Path | None) -> None:
    """Remove ``folder`` and what it holds, if it is there (uploads, a job's files)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
