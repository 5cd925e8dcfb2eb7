"""Long work the HTTP API runs for a caller, as rows every API process can read (issue
#23): a plan or launch of a million-row list, a report, a verification, an export. A
request starts one and answers at once with its id; the caller follows its ``state`` and
``done`` (rows read, events checked …) until ``done`` or ``failed``, then reads its
``result`` and, for a report or an export, downloads its file.

States only move forward: ``queued`` → ``running`` → ``done`` | ``failed`` |
``interrupted``. A runner beats (``heartbeat``) while it works; a running job whose runner
has been silent for ``STALE`` (the API process was killed) is ``interrupted`` the next
time anyone looks: every job's work is safe to start again (a launch is idempotent by its
campaign id and recorded in one transaction, so nothing of an interrupted one stays).

``key`` makes two requests one job: a second launch of a campaign id while the first is
still open gets the first's job (a unique index over open jobs' keys, so two API
processes racing make one).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ledger.schema import jobs, now

#: How long a running job's runner may be silent before the job counts as interrupted
#: (runners beat every ``BEAT``).
STALE = timedelta(seconds=60)
BEAT = timedelta(seconds=10)
OPEN = ("queued", "running")
FINISHED = ("done", "failed", "interrupted")


@dataclass(frozen=True)
class JobRecord:
    """One job as the API shows it; ``file``: the path of its download, if any."""

    id: str
    kind: str
    state: str
    account: str
    key: str | None
    created_at: datetime
    heartbeat: datetime
    finished_at: datetime | None
    done: int
    unit: str
    result: dict[str, Any] | None
    problem: dict[str, Any] | None
    file: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _record(row: Any) -> JobRecord:
    return JobRecord(**{name: getattr(row, name) for name in JobRecord.__dataclass_fields__})


def open_job(
    engine: Engine, kind: str, account: str, key: str | None = None, unit: str = "rows"
) -> tuple[JobRecord, bool]:
    """A new ``queued`` job, or the open one with the same ``key``.

    Returns:
        ``(job, created)``: ``created`` False when an open job had ``key`` already.
    """
    job_id = "job_" + secrets.token_urlsafe(12)
    at = now()
    values = dict(id=job_id, kind=kind, state="queued", account=account, key=key,
                  created_at=at, heartbeat=at, unit=unit)  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.execute(jobs.insert().values(**values))
    except IntegrityError:
        if key is None:
            raise
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(jobs).where(jobs.c.key == key, jobs.c.state.in_(OPEN))
            ).first()
        if row is None:  # finished meanwhile: a fresh one
            return open_job(engine, kind, account, key, unit)
        return _record(row), False
    found = get(engine, job_id)
    assert found is not None
    return found, True


def _move(engine: Engine, job_id: str, states: tuple[str, ...], **values: Any) -> bool:
    with engine.begin() as conn:
        moved = conn.execute(
            jobs.update().where(jobs.c.id == job_id, jobs.c.state.in_(states)).values(**values)
        ).rowcount
    return bool(moved)


def start(engine: Engine, job_id: str, runner: str) -> bool:
    """``queued`` → ``running`` under ``runner`` (``host:pid``); False if it was not queued."""
    return _move(engine, job_id, ("queued",), state="running", runner=runner, heartbeat=now())


def advance(engine: Engine, job_id: str, done: int) -> None:
    """A running job has done ``done`` units; also a heartbeat."""
    _move(engine, job_id, ("running",), done=done, heartbeat=now())


def beat(engine: Engine, job_ids: list[str]) -> None:
    """The runner of ``job_ids`` (queued or running) is alive."""
    if job_ids:
        with engine.begin() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(job_ids), jobs.c.state.in_(OPEN))
                .values(heartbeat=now())
            )


def finish(
    engine: Engine, job_id: str, result: dict[str, Any], file: str | None, done: int
) -> bool:
    """A running job ends well, with its ``result`` (and the path of its ``file``)."""
    at = now()
    return _move(engine, job_id, ("running",), state="done", result=result, file=file,
                 done=done, finished_at=at, heartbeat=at)  # fmt: skip


def fail(engine: Engine, job_id: str, problem: dict[str, Any], done: int) -> bool:
    """A job ends in ``problem`` (RFC 9457 details: what the caller would have had);
    ``interrupted`` when the problem is ``interrupted``'s."""
    at = now()
    state = "interrupted" if problem.get("title") == "interrupted" else "failed"
    return _move(engine, job_id, OPEN, state=state, problem=problem, done=done,
                 finished_at=at, heartbeat=at)  # fmt: skip


def get(engine: Engine, job_id: str) -> JobRecord | None:
    """The job, ``None`` when there is none; an open one whose runner has been silent for
    ``STALE`` is marked ``interrupted`` first."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    if row.state in OPEN and now() - row.heartbeat > STALE:
        problem = interrupted("the API process running this job stopped before it ended")
        _move(engine, job_id, OPEN, state="interrupted", problem=problem, finished_at=now())
        return get(engine, job_id)
    return _record(row)


def interrupted(why: str) -> dict[str, Any]:
    """The problem of a job that never ended: ``why``, and that it may start again."""
    return {
        "type": "https://loa.example.vn/problems/interrupted",
        "status": 503,
        "title": "interrupted",
        "detail": f"{why}; nothing of it was kept half-done: start it again",
    }


def open_count(engine: Engine, account: str) -> int:
    """How many of ``account``'s jobs are queued or running."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(jobs)
                .where(jobs.c.account == account, jobs.c.state.in_(OPEN))
            )
            or 0
        )


def page(engine: Engine, account: str | None, limit: int, offset: int) -> list[JobRecord]:
    """Jobs newest first: ``account``'s, or everyone's (``None``)."""
    query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id)
    if account is not None:
        query = query.where(jobs.c.account == account)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).all()
    return [_record(row) for row in rows]


def stale_files(engine: Engine, older_than: timedelta) -> list[tuple[str, str]]:
    """``(job id, file)`` of jobs finished more than ``older_than`` ago whose file is
    still kept; ``forget_file`` once removed."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.file).where(
                jobs.c.file.is_not(None), jobs.c.finished_at < now() - older_than
            )
        ).all()
    return [(row.id, row.file) for row in rows]


def forget_file(engine: Engine, job_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(file=None))
