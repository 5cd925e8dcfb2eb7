"""The API's app: every route module's router under ``/v1``, problem details for every
error, the body limit, and the job runner its long work runs on.

Routes, each naming the role it needs (``scripts.api.common``): ``sessions`` (login),
``campaigns`` (list, one, pause/resume/cancel), ``launches`` (plan, launch from
uploads), ``jobs`` (their progress and downloads), ``reports``, ``recipients`` (one
number's history), ``suppressions``, ``audit`` (verify, checkpoints, exports),
``providers`` (list, halts, resume).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from scripts.api import problems
from scripts.api.uploads import BodyLimit
from worker.runtime import Runtime


def make_app(runtime: Runtime, sends: bool | None = None) -> FastAPI:
    """The API on ``runtime``'s ledger and providers. ``sends``: run worker threads in
    this process while it serves, so what it launches is sent; by default when embedded
    (no Redis: no ``loa worker`` could take the jobs)."""
    sends = runtime.settings.embedded if sends is None else sends
    from scripts.api import (
        audit,
        campaigns,
        jobs,
        launches,
        providers,
        recipients,
        reports,
        sessions,
        suppressions,
    )
    from scripts.api.runner import JobRunner
    from scripts.api.standing import Standings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if sends:
                import threading

                from starlette.concurrency import run_in_threadpool

                from worker.campaign.embedded import embedded_worker, housekeep

                working = embedded_worker(runtime)
                await run_in_threadpool(working.__enter__)
                stack.push_async_callback(run_in_threadpool, working.__exit__, None, None, None)
                # No housekeeper beside it: its chores here (receipts, fallbacks, seals).
                stop = threading.Event()
                keeper = threading.Thread(target=housekeep, args=(runtime, stop),
                                          name="loa-upkeep", daemon=True)  # fmt: skip
                keeper.start()
                stack.callback(keeper.join, 30)
                stack.callback(stop.set)
            stack.callback(app.state.jobs.close)
            stack.callback(app.state.standings.close)
            yield

    # The docs pages with Swagger UI and ReDoc served by the app itself (fastapi-offline
    # bundles them): on an internal network without the internet, FastAPI's own pages,
    # which load their scripts from a CDN, would be blank.
    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(
        title="Loa",
        version="1",
        lifespan=lifespan,
        # Every route may answer these, as problem details (``scripts.api.problems``);
        # each names the others it may (403 where a role is above an auditor's …).
        responses=problems.described(401, 413, 422, 500, 503),
        description="Campaigns, recipients, reports and the audit log of Loa, for the "
        "province's systems. Every route needs `Authorization: Bearer TOKEN` "
        "(`loa users token NAME`, or `POST /v1/sessions`); errors are RFC 9457 problem "
        "details; long work (a plan, a launch, a report, a verification, an export) "
        "answers 202 and a job to follow at `/v1/jobs/ID`.",
    )
    app.state.runtime = runtime
    app.state.throttle = sessions.throttle()
    app.state.lookups = recipients.lookups()
    folder = runtime.settings.var_dir / "api"
    app.state.jobs = JobRunner(runtime.engine, folder, runtime.settings.api_jobs)
    app.state.standings = Standings(
        lambda campaign_id: campaigns.standing_of(runtime, campaign_id),
        lambda campaign_id: campaigns.version_of(runtime, campaign_id),
    )
    problems.install(app)
    app.add_middleware(BodyLimit, limit=runtime.settings.api_max_upload)
    for module in (sessions, campaigns, launches, jobs, reports, recipients, suppressions,
                   audit, providers):  # fmt: skip
        app.include_router(module.router)
    return app
