"""What every route module shares: the runtime and job runner of the app serving the
request, the roles' dependencies, and a page's bounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ledger.api.accounts import Account
from scripts.api.auth import requires
from scripts.api.runner import JobRunner
from worker.runtime import Runtime

#: An auditor reads; an operator also changes campaigns, suppressions and providers.
Reader = Annotated[Account, Depends(requires("auditor"))]
Changer = Annotated[Account, Depends(requires("operator"))]
Limit = Annotated[int, Query(ge=1, le=200, description="items at most on this page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items skipped before it")]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def runner_of(request: Request) -> JobRunner:
    return request.app.state.jobs


Served = Annotated[Runtime, Depends(runtime_of)]
Jobs = Annotated[JobRunner, Depends(runner_of)]
