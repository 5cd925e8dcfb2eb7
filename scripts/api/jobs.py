"""Jobs: the long work a request started (a plan, a launch, a report, a verification, an
export), its progress, its result and its download. A job is its account's: another
account gets 404 for it (an admin sees every one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anyio import open_file as _open_file  # noqa: F401 (see below)
from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from ledger.api.accounts import Account
from ledger.api.jobs import JobRecord
from scripts.api import problems
from scripts.api.common import Limit, Offset, Reader, Served
from scripts.api.problems import Problem

# Starlette's FileResponse opens a download with ``anyio.open_file``, a module anyio
# imports lazily on first use: imported here, with the app, not inside a request while
# other threads import too (CPython 3.11's parser is not safe for that under pytest's
# rewriting import hook: a download answered 500 once in CI, "AST constructor recursion
# depth mismatch").
router = APIRouter(tags=["jobs"])

MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".jsonl": "application/jsonl",
    ".json": "application/json",
    ".zip": "application/zip",
}


class Job(BaseModel):
    """Long work and how far it got. ``state``: queued, running, then done, failed (its
    ``problem`` says why, as RFC 9457 details) or interrupted (the process running it
    stopped; start it again). ``done``: units (``unit``) done so far. ``file``: the
    download's path when it has one."""

    id: str
    kind: str
    state: str
    account: str
    created_at: datetime
    finished_at: datetime | None
    done: int
    unit: str
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    file: str | None = Field(default=None, description="GET it for the job's download")


class JobPage(BaseModel):
    jobs: list[Job]
    next: int | None


def shown(record: JobRecord) -> Job:
    return Job(
        id=record.id,
        kind=record.kind,
        state=record.state,
        account=record.account,
        created_at=record.created_at,
        finished_at=record.finished_at,
        done=record.done,
        unit=record.unit,
        result=record.result,
        problem=record.problem,
        file=f"/v1/jobs/{record.id}/file" if record.file and record.state == "done" else None,
    )


def accepted(record: JobRecord) -> JSONResponse:
    """202 and the job, with where to follow it (``Location``)."""
    return JSONResponse(
        shown(record).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/jobs/{record.id}"},
    )


#: What a route that starts a job answers (for its OpenAPI description).
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": Job, "description": "started (or the same job already open): follow it"},
    **problems.described(429),  # the account has too many jobs open already
}


def _mine(runtime: Any, job_id: str, caller: Account) -> JobRecord:
    """The job, if the caller may see it: its own, any for an admin, a launch for any
    operator (a second operator launching the same files meanwhile is handed the first's
    job), a verification for anyone (one runs at a time; its verdict names no number).
    Raises: Problem 404, as for a job that does not exist."""
    from ledger.api.jobs import get

    found = get(runtime.engine, job_id)
    if found is None or not (
        found.account == caller.name
        or caller.may("admin")
        or (found.kind == "launch" and caller.may("operator"))
        or found.kind == "verify"
    ):
        raise Problem(404, f"no job {job_id!r}")
    return found


@router.get("/v1/jobs", response_model=JobPage)
def my_jobs(caller: Reader, runtime: Served, limit: Limit = 50, offset: Offset = 0) -> JobPage:
    """The caller's jobs, newest first (an admin's: everyone's)."""
    from ledger.api.jobs import page

    account = None if caller.may("admin") else caller.name
    found = page(runtime.engine, account, limit + 1, offset)
    return JobPage(
        jobs=[shown(record) for record in found[:limit]],
        next=offset + limit if len(found) > limit else None,
    )


@router.get("/v1/jobs/{job_id}", response_model=Job, responses=problems.described(404))
def job(job_id: str, caller: Reader, runtime: Served) -> Job:
    """One job: its state, how far it got (``done`` ``unit``), its result or problem,
    and its download when it has one. Poll it every second or so until it has ended."""
    return shown(_mine(runtime, job_id, caller))


DOWNLOAD = {200: {"content": {media: {} for media in MEDIA.values()}, "description": "the file"}}


@router.get(
    "/v1/jobs/{job_id}/file",
    response_class=FileResponse,
    responses={**DOWNLOAD, **problems.described(404, 409)},
)
def job_file(job_id: str, caller: Reader, runtime: Served) -> FileResponse:
    """The job's download (a report, an export, the rejected rows of a plan), streamed.
    409 while the job has not ended well; 404 once removed (a day after)."""
    from pathlib import Path

    found = _mine(runtime, job_id, caller)
    if found.state != "done":
        raise Problem(409, f"job {job_id} is {found.state}: no download yet", "job-state")
    if found.file is None or not Path(found.file).is_file():
        raise Problem(404, f"job {job_id} has no download (or it was removed after a day)")
    path = Path(found.file)
    return FileResponse(
        path, media_type=MEDIA.get(path.suffix, "application/octet-stream"), filename=path.name
    )
