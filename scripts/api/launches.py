"""Plans and launches from uploaded files: a campaign file and its list (multipart), as
``loa campaign plan`` and ``launch`` take them from a shell.

Everything that can be wrong before the first row (the campaign file, its providers, a
validity that would end before the first sending hour, the list's header and encoding)
is checked in the request: a 422 naming the file and field, as the CLI says it. The rows
are read in a job (202, ``/v1/jobs/ID``): a million of them take longer than a request
should be held open. A launch is idempotent by its campaign id: while one runs, another
gets the same job; once it has ended, a second launch adds nothing (its result says so),
and one with another list or campaign file fails 409 with nothing added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from scripts.api import problems
from scripts.api.common import Changer, Jobs, Served
from scripts.api.jobs import ACCEPTED, accepted
from scripts.api.problems import Problem
from scripts.api.refusals import refusal
from scripts.api.runner import JobRunner, Running, remove_folder
from scripts.api.uploads import save
from worker.runtime import Runtime

router = APIRouter(tags=["campaigns"])

SpecFile = Annotated[UploadFile, File(description="The campaign file (TOML), as for the CLI.")]
ListFile = Annotated[UploadFile, File(description="The recipient list: CSV, TSV or XLSX.")]
PortedFile = Annotated[
    UploadFile | None, File(description="Ported numbers and their carrier (CSV), optional.")
]
GoalFiles = Annotated[
    list[UploadFile] | None,
    File(
        description="The files the campaign's goal names (its goal file, its population "
        "file), each named in the campaign file by its name alone; optional."
    ),
]
PhoneColumn = Annotated[
    str | None, Form(max_length=200, description="The phone column's header, if not found.")
]
Encoding = Annotated[str | None, Form(max_length=40, description="utf-8, cp1258 …")]
Sheet = Annotated[str | None, Form(max_length=200, description="The XLSX sheet to read.")]
EvenIfExpired = Annotated[
    bool, Form(description="Go on when every message would expire before the sending hours.")
]


@dataclass
class Staged:
    """A request's uploads, saved private in their own folder."""

    folder: Path
    spec: Path
    recipients: Path
    ported: Path | None
    names: dict[str, str] = field(default_factory=dict)
    goal_files: list[Path] = field(default_factory=list)
    spec_id: str = ""
    #: The campaign file as checked (its goal's files read beside it, by their names):
    #: what the job plans or launches, never the file read again another way.
    campaign: Any = None
    #: The files' SHA-256 together: two launches of one campaign share a job only when
    #: they sent the same files (another list gets its own job, and its own 409).
    digest: str = ""


async def _stage(
    runner: JobRunner,
    spec: UploadFile,
    recipients: UploadFile,
    ported: UploadFile | None,
    goal_files: list[UploadFile] | None = None,
) -> Staged:
    folder, names = runner.staging(), {}
    try:
        saved_spec = await save(spec, folder, "campaign.toml", names)
        saved_list = await save(recipients, folder, "list.csv", names)
        saved_ported = await save(ported, folder, "ported.csv", names) if ported else None
        saved_goal = [await save(each, folder, "goal-file", names) for each in goal_files or []]
    except BaseException:
        remove_folder(folder)
        raise
    names[str(folder) + "/"] = ""  # any other mention of the folder: the name alone
    return Staged(folder, saved_spec, saved_list, saved_ported, names, saved_goal)


def _files_digest(staged: Staged) -> str:
    """The staged files' SHA-256s, hashed together."""
    import hashlib

    from worker.campaign.launch import file_sha256

    files = (staged.spec, staged.recipients, staged.ported, *staged.goal_files)
    return hashlib.sha256(
        b"".join(bytes.fromhex(file_sha256(path)) for path in files if path is not None)
    ).hexdigest()


def _options(staged: Staged, phone_column: str | None, encoding: str | None, sheet: str | None):
    from worker.campaign.planning import ListOptions

    return ListOptions(phone_column, encoding, sheet, staged.ported)


def _check(
    runtime: Runtime, staged: Staged, options: Any, start_at: datetime | None, go_on: bool
) -> None:
    """What a launch checks before its first row, raising what the CLI says (a refusal).

    Raises:
        Problem: 422 (bad input), naming the file as uploaded.
    """
    from campaigns.hours import VIETNAM
    from campaigns.plan import PlanError, Planner
    from campaigns.spec import load_spec
    from providers import ProviderConfigError
    from worker.campaign.planning import routes

    try:
        # Its goal's files only those sent with it, never a path on this server.
        spec = staged.campaign = load_spec(staged.spec, beside_only=True)
        staged.spec_id = spec.id
        staged.digest = _files_digest(staged)
        unsent = spec.expires_unsent(start_at or datetime.now(VIETNAM))
        if unsent is not None and not go_on:
            first, end = (moment.astimezone(VIETNAM) for moment in unsent)
            raise Problem(
                422,
                f"{staged.spec.name}: every message would expire unsent: the validity ends "
                f"at {end:%H:%M %d/%m}, before the sending hours open at {first:%H:%M %d/%m} "
                "(Vietnam). Launch later, lengthen `validity`, widen `sending_hours`, or "
                "send even_if_expired=true.",
                "invalid-input",
            )
        try:
            router = routes(runtime, spec)
        except ProviderConfigError as exc:
            raise ProviderConfigError(f"{staged.spec.name}: {exc}") from None
        opened = options.open(staged.recipients)
        getattr(opened, "close", lambda: None)()
        # The template's fields against the list's columns, the parts each provider
        # takes: what the planner refuses before its first row (its suppression lists,
        # read in the job, do not matter here).
        limits = {name: runtime.provider(name).limits for _, name in router.named()}
        try:
            Planner(spec, opened.columns, router=router, limits=limits)
        except PlanError as exc:
            raise PlanError(f"{staged.recipients}: {exc}") from None
    except Problem:
        raise
    except Exception as exc:
        found = refusal(exc, staged.names)
        if found is None:
            raise
        raise found from None


async def _checked(
    runtime: Runtime, runner: JobRunner, files: tuple[Any, ...],
    options: tuple[str | None, str | None, str | None], start_at: datetime | None, go_on: bool,
) -> tuple[Staged, Any]:  # fmt: skip
    staged = await _stage(runner, *files)
    try:
        chosen = _options(staged, *options)
        await run_in_threadpool(_check, runtime, staged, chosen, start_at, go_on)
    except BaseException:
        remove_folder(staged.folder)
        raise
    return staged, chosen


@router.post(
    "/v1/plans",
    status_code=202,
    response_class=JSONResponse,
    responses={**ACCEPTED, **problems.described(403)},
)
async def plan(
    caller: Changer,
    runtime: Served,
    runner: Jobs,
    spec: SpecFile,
    recipients: ListFile,
    ported: PortedFile = None,
    goal_files: GoalFiles = None,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    reach: Annotated[
        float | None, Form(ge=0, le=1, description="The share a template channel reaches.")
    ] = None,
    even_if_expired: EvenIfExpired = False,
) -> JSONResponse:
    """A dry run (``loa campaign plan``): the list read as a launch would, and what would
    be sent, per provider, carrier and channel, with parts and cost. Nothing is written
    but the job. The job's result is the plan; its download, the rejected rows (CSV) when
    there are any."""
    files, options = (spec, recipients, ported, goal_files), (phone_column, encoding, sheet)
    staged, chosen = await _checked(runtime, runner, files, options, None, even_if_expired)

    def work(running: Running) -> dict[str, Any]:
        from campaigns.stream import RejectsFile
        from worker.campaign.planning import plan_figures, prepare

        prepared = prepare(runtime, staged.campaign, staged.recipients, chosen)
        rejects = running.output("rejects.csv")
        for _ in RejectsFile(rejects).through(prepared.decisions()):
            running.tick()
        if not rejects.exists() or prepared.summary.rejected_total == 0:
            running.file = None
        figures = plan_figures(prepared, runtime.settings, reach)
        return {**figures, "list": staged.names[str(staged.recipients)]}

    record, _ = runner.submit("plan", caller.name, work, uploads=staged.folder, names=staged.names)
    return accepted(record)


@router.post(
    "/v1/launches",
    status_code=202,
    response_class=JSONResponse,
    responses={**ACCEPTED, **problems.described(403)},
)
async def launch(
    caller: Changer,
    runtime: Served,
    runner: Jobs,
    spec: SpecFile,
    recipients: ListFile,
    ported: PortedFile = None,
    goal_files: GoalFiles = None,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    at: Annotated[
        datetime | None,
        Form(description="Start sending then (ISO 8601; Vietnam's time without an offset)."),
    ] = None,
    even_if_expired: EvenIfExpired = False,
) -> JSONResponse:
    """Record the campaign and every recipient in the ledger and queue the sending
    (``loa campaign launch``); ``loa worker`` processes send it (embedded, without
    Redis, this API process does). ``at`` needs Redis and a running ``loa scheduler``
    (422 without Redis). Idempotent by the
    campaign's id: the same launch while one runs gets its job; once ended, nothing is
    added (``launched`` false); another list or campaign file fails 409, nothing added.
    The job's result: what was launched and the plan's counts."""
    start_at = _start_at(at, runtime) if at is not None else None
    files, options = (spec, recipients, ported, goal_files), (phone_column, encoding, sheet)
    staged, chosen = await _checked(runtime, runner, files, options, start_at, even_if_expired)

    def work(running: Running) -> dict[str, Any]:
        from worker.campaign.launch import launch as launch_campaign

        rejects = running.output("rejects.csv")
        launched = launch_campaign(
            runtime, staged.campaign, staged.recipients, chosen, rejects=rejects,
            progress=running.tick, start_at=start_at,
        )  # fmt: skip
        if launched.refused:
            what = "list" if launched.list_differs else "campaign file"
            raise Problem(
                409,
                f"campaign {launched.campaign_id} was already launched with another {what}: "
                "nothing was added. Give the campaign a new id to send it.",
                "already-launched",
            )
        if launched.prepared.summary.rejected_total == 0 or not launched.created:
            running.file = None
        return {
            "campaign": launched.campaign_id,
            "launched": launched.created,
            "batches_enqueued": launched.batches_enqueued,
            "start_at": start_at.isoformat() if start_at else None,
            "plan": launched.prepared.summary.as_dict(),
        }

    record, _ = runner.submit(
        "launch", caller.name, work, key=f"launch:{staged.spec_id}:{staged.digest[:32]}",
        uploads=staged.folder, names=staged.names,
    )  # fmt: skip
    return accepted(record)


def _start_at(at: datetime, runtime: Runtime) -> datetime:
    """``at``, aware (Vietnam's time when it has no offset). Raises: Problem 422 when it
    has passed, is more than a year ahead, or nothing would start it (no Redis)."""
    from campaigns.hours import VIETNAM

    def refuse(why: str) -> Problem:
        return Problem(422, f"at: {why}", "invalid-input", errors=[{"where": "body.at",
                       "what": why}])  # fmt: skip

    if runtime.settings.embedded:
        raise refuse("needs LOA_REDIS_URL and a running `loa scheduler`; launch when it is time")
    moment = at.replace(tzinfo=VIETNAM) if at.tzinfo is None else at
    if moment < datetime.now(VIETNAM) - timedelta(minutes=1):
        raise refuse("that time has passed")
    if moment > datetime.now(VIETNAM) + timedelta(days=366):
        raise refuse("more than a year ahead; launch nearer the time")
    return moment
