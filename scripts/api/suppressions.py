"""Suppression lists (opt-outs, the Do-Not-Call register, residents): counts, a page of
a list (numbers masked for an auditor), adding and removing numbers, importing a file.
Every change is an event saying how many and by whom, never which numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from campaigns.phones import mask_in_names
from scripts.api import problems
from scripts.api.common import Changer, Jobs, Limit, Offset, Reader, Served
from scripts.api.jobs import ACCEPTED, accepted
from scripts.api.problems import Problem
from scripts.api.recipients import textable
from scripts.api.refusals import refusal
from scripts.api.runner import Running, remove_folder
from scripts.api.uploads import save

router = APIRouter(tags=["suppressions"])
#: ``campaigns.spec.SUPPRESSION_LISTS``.
ListName = Literal["opt_out", "dnc", "residents"]


class Suppressed(BaseModel):
    number: str
    added_at: datetime
    source: str | None


class SuppressedPage(BaseModel):
    """A page of a list, by number; numbers masked unless the role sees whole ones."""

    list: str
    numbers: list[Suppressed]
    masked: bool
    next: int | None


class Additions(BaseModel):
    """Numbers to add, in any usual form (``0912…``, ``+84912…``)."""

    numbers: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=1000)
    source: str = Field(default="api", max_length=200, description="where they came from")


class Added(BaseModel):
    """``added`` new, ``already_listed``, ``repeated`` in the request; ``rejected``: the
    numbers not textable, by their place in the request (the others were added all the
    same). The four add up to the numbers sent."""

    list: str
    added: int
    already_listed: int
    repeated: int
    rejected: list[dict[str, str]]


@router.get("/v1/suppressions", response_model=dict[str, int])
def counts(caller: Reader, runtime: Served) -> dict[str, int]:
    """How many numbers each list holds."""
    from ledger.suppressions import counts as of

    return of(runtime.engine)


@router.get("/v1/suppressions/{list_name}", response_model=SuppressedPage)
def listed(
    list_name: ListName, caller: Reader, runtime: Served, limit: Limit = 50, offset: Offset = 0
) -> SuppressedPage:
    """A page of one list's numbers, by number, each with when and from where it was
    added; masked unless the caller's role sees whole numbers (operator)."""
    from campaigns.phones import mask
    from ledger.suppressions import page

    whole = caller.may("operator")
    found = page(runtime.engine, list_name, limit + 1, offset)
    return SuppressedPage(
        list=list_name,
        numbers=[
            Suppressed(number=number if whole else mask(number), added_at=at, source=source)
            for number, at, source in found[:limit]
        ],
        masked=not whole,
        next=offset + limit if len(found) > limit else None,
    )


@router.post(
    "/v1/suppressions/{list_name}", response_model=Added, responses=problems.described(403)
)
def add(list_name: ListName, body: Additions, caller: Changer, runtime: Served) -> Added:
    """Add numbers (at most 1,000 a request; a file: ``…/import``). One not textable is
    named in ``rejected`` and the others added; all of them not textable is a 422."""
    from ledger.suppressions import add_numbers

    good, rejected = [], []
    for place, raw in enumerate(body.numbers):
        try:
            good.append(textable(raw, f"body.numbers.{place}"))
        except Problem as problem:
            rejected.extend(problem.more["errors"])
    if not good:
        raise Problem(422, "no textable number among them", "invalid-input", errors=rejected)
    # Where they came from is free text, kept and shown to auditors: a number in it masked.
    added = add_numbers(runtime.engine, list_name, good, source=mask_in_names(body.source))
    distinct = len(set(good))
    return Added(list=list_name, added=added, already_listed=distinct - added,
                 repeated=len(good) - distinct, rejected=rejected)  # fmt: skip


@router.delete(
    "/v1/suppressions/{list_name}/{number}",
    status_code=204,
    response_class=Response,
    responses=problems.described(403, 404),
)
def remove(list_name: ListName, number: str, caller: Changer, runtime: Served) -> Response:
    """Take a number off a list; 404 when it was not on it."""
    from ledger.suppressions import remove_number

    if not remove_number(runtime.engine, list_name, textable(number, "path.number")):
        raise Problem(404, f"that number is not on {list_name}")
    return Response(status_code=204)


@router.post(
    "/v1/suppressions/{list_name}/import",
    status_code=202,
    response_class=JSONResponse,
    responses={**ACCEPTED, **problems.described(403)},
)
async def import_file(
    list_name: ListName,
    caller: Changer,
    runtime: Served,
    runner: Jobs,
    file: Annotated[UploadFile, File(description="Numbers: CSV, TSV or XLSX, a phone column.")],
    phone_column: Annotated[str | None, Form(max_length=200)] = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
) -> JSONResponse:
    """Add every number of a file (``loa suppress import``) in one transaction, in a job:
    unusable or repeated rows counted and skipped (the job's download lists them, row
    by row); a file that cannot be read is a 422 now."""
    from campaigns.recipients import PHONE_HEADERS, open_list

    folder, names = runner.staging(), {}
    try:
        path = await save(file, folder, "numbers.csv", names)
        names[str(folder) + "/"] = ""

        def check() -> None:
            try:
                open_list(path, phone_column=phone_column, encoding=encoding,
                          phone_headers=(*PHONE_HEADERS, "number"))  # fmt: skip
            except Exception as exc:
                raise refusal(exc, names) or exc from None

        await run_in_threadpool(check)
    except BaseException:
        remove_folder(folder)
        raise

    def work(running: Running) -> dict[str, Any]:
        from campaigns.plan import RejectedRow
        from campaigns.screen import ScreenSummary, screen
        from campaigns.stream import RejectsFile
        from ledger.suppressions import add_numbers

        summary = ScreenSummary()
        opened = open_list(path, phone_column=phone_column, encoding=encoding,
                           phone_headers=(*PHONE_HEADERS, "number"))  # fmt: skip

        def read() -> Any:  # each row: its number, or why not (to the rejects file)
            for row, phone, why in screen(opened.rows(), summary):
                running.tick()
                yield phone.e164 if phone is not None else RejectedRow(row.row, why, row.phone)

        rejects = RejectsFile(running.output("rejects.csv")).through(read())
        numbers = (number for number in rejects if type(number) is str)
        source = mask_in_names(names[str(path)])  # a file named after a number, masked
        added = add_numbers(runtime.engine, list_name, numbers, source=source)
        if summary.valid == summary.rows_read:
            running.file = None  # nothing refused: no download
        return {"list": list_name, "added": added, "already_listed": summary.valid - added,
                **summary.as_dict()}  # fmt: skip

    record, _ = runner.submit("suppressions", caller.name, work, uploads=folder, names=names)
    return accepted(record)
