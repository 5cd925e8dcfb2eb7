"""Uploads: a request's body bounded in size (413 before it is read whole), and each
uploaded file saved private (0600 in a 0700 folder, never through a link) under a plain
name, so what the planner says names the file as the caller sent it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaigns.files import create_private, plain_file_name

#: A body that is not a multipart upload (JSON): small.
SMALL = 1024 * 1024
CHUNK = 1024 * 1024


#: The routes that take uploads (multipart, up to ``LOA_API_MAX_UPLOAD``); every other
#: body, whatever its type says, is ``SMALL``.
UPLOAD_ROUTES = re.compile(r"/v1/(plans|launches|suppressions/[^/]+/import)")


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes (a multipart upload to a route that
    takes one) or ``SMALL`` (anything else) is answered 413, at once when
    ``Content-Length`` says so, else as soon as that much has come.

    FastAPI reads a request's body before it checks who sent it: an upload larger than
    ``SMALL`` is let in only with an operator's token (else 401 or 403 before a byte of
    it is read), so nobody without one makes the server spool 256 MB. The headers are
    read as Starlette reads them (the first of a repeated one), so that a second
    ``Content-Type`` cannot make this limit a multipart's and the route's body JSON."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = _header(scope, b"content-type").split(b";")[0].strip().lower()
        upload = kind == b"multipart/form-data" and bool(UPLOAD_ROUTES.fullmatch(scope["path"]))
        limit = self.limit if upload else SMALL
        declared = _header(scope, b"content-length").strip()
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit, upload, send)
            return
        if upload and not (declared.isdigit() and int(declared) <= SMALL):
            refused = await _not_an_operator(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException: FastAPI lets it through the body's parsing as is
                    # (any other error there becomes a 400).
                    raise HTTPException(413, _said(limit, upload))
            return message

        await self.app(scope, counted, send)


def _header(scope: Scope, name: bytes) -> bytes:
    """The first value of header ``name`` (Starlette's ``Request.headers`` reads that one)."""
    return next((value for key, value in scope["headers"] if key == name), b"")


async def _not_an_operator(scope: Scope) -> Any:
    """The problem (an ASGI response) for an upload whose token is not a live operator's,
    ``None`` when it is: what the route would answer, before the body is read."""
    from starlette.concurrency import run_in_threadpool

    from ledger.api.accounts import Unauthorized, by_token
    from scripts.api.problems import problem

    scheme, _, token = _header(scope, b"authorization").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return problem(401, "send an API token: Authorization: Bearer TOKEN (loa users token)")
    try:
        engine = scope["app"].state.runtime.engine
        caller = await run_in_threadpool(by_token, engine, token.strip())
    except Unauthorized:
        return problem(401, "the token is unknown, expired or revoked")
    if not caller.may("operator"):
        return problem(403, f"this needs the operator role; {caller.name} is {caller.role}")
    return None


def _said(limit: int, upload: bool) -> str:
    if upload:
        return f"the upload is larger than {limit:,} bytes (LOA_API_MAX_UPLOAD)"
    return f"the body is larger than {limit:,} bytes; send files as a multipart upload"


async def _too_large(limit: int, upload: bool, send: Send) -> None:
    import json

    from scripts.api.problems import BASE, MEDIA

    body = json.dumps({"type": BASE + "too-large", "title": "too large", "status": 413,
                       "detail": _said(limit, upload)}, separators=(",", ":")).encode()  # fmt: skip
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", MEDIA.encode()), (b"connection", b"close"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def plain_name(given: str | None, fallback: str) -> str:
    """The uploaded file's own name without its folders, in letters, digits, ``.``,
    ``_`` and ``-`` (at most 100, its suffix kept: it says the list's format);
    ``fallback`` when nothing is left."""
    name = plain_file_name(Path((given or "").replace("\\", "/")).name)
    if len(name) > 100:
        suffix = Path(name).suffix[:20]
        name = name[: 100 - len(suffix)] + suffix
    return name if name.strip("._") else fallback


async def save(upload: UploadFile, folder: Path, fallback: str, names: dict[str, Any]) -> Path:
    """Write ``upload`` into ``folder`` (made by ``JobRunner.staging``) under its plain
    name; records the path → name said in messages in ``names``."""
    name = plain_name(upload.filename, fallback)
    path, taken = folder / name, 1
    while path.exists():  # fields with one name: the next under its field's, and a number
        path = folder / (f"{fallback}-{name}" if taken == 1 else f"{fallback}-{taken}-{name}")
        taken += 1
    with create_private(path) as out:
        while chunk := await upload.read(CHUNK):
            out.write(chunk)
    names[str(path)] = Path((upload.filename or "").replace("\\", "/")).name or name
    return path
