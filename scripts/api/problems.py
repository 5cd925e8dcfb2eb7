"""Errors as problem details (RFC 9457): ``application/problem+json`` with a ``type``, a
``title``, the ``status``, a ``detail`` and, for bad input, the fields named
(``errors``: where and what). Never a traceback: an error nobody expected is a 500 that
says so, its cause in the log."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from worker.logging import get_logger

log = get_logger("loa.api")

MEDIA = "application/problem+json"
#: The base of each problem's ``type`` (a URI naming the kind, RFC 9457 §3.1.1).
BASE = "https://loa.example.vn/problems/"
TITLES = {
    400: "bad request",
    401: "not authenticated",
    403: "not allowed for this role",
    404: "not found",
    405: "method not allowed",
    409: "conflict with the current state",
    413: "too large",
    422: "invalid input",
    429: "too many attempts",
    500: "internal error",
    503: "unavailable",
}


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    retry_after: int | None = None


def described(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of problems a route may answer (so a description-driven
    client, or fuzzer, knows each status and its shape)."""
    return {
        status: {
            "model": ProblemDetails,
            "description": TITLES[status],
            "content": {MEDIA: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }


class Problem(Exception):
    """An answer other than success, raised from a route."""

    def __init__(self, status: int, detail: str, kind: str | None = None, **more: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.more = status, detail, more
        self.kind = kind or TITLES.get(status, "error").replace(" ", "-")


def problem(status: int, detail: str, kind: str | None = None, **more: Any) -> JSONResponse:
    body = {
        "type": BASE + (kind or TITLES.get(status, "error").replace(" ", "-")),
        "title": TITLES.get(status, "error"),
        "status": status,
        "detail": detail,
        **more,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in more:
        headers["Retry-After"] = str(more["retry_after"])
    return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers or None)


def install(app: FastAPI) -> None:
    """Every error the app can meet, answered as a problem."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem(exc.status, exc.detail, exc.kind, **exc.more)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "what": str(e.get("msg"))}
            for e in exc.errors()
        ]
        said = "; ".join(f"{e['where']}: {e['what']}" for e in errors)
        return problem(422, said, "invalid-input", errors=errors)

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (PostgreSQL: a NUL character in a name, an id, a
        # source): the caller's input, not a bug; the statement stays in no answer.
        log.warning("api.unstorable", path=request.url.path, error=type(exc.orig).__name__)
        return problem(422, "a value here cannot be stored (a NUL character?)", "invalid-input")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unexpected", path=request.url.path, error=type(exc).__name__)
        return problem(500, "an error nobody expected; its cause is in the server's log")
