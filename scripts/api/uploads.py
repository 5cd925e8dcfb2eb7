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

from campaigns.files import create_private

#: A body that is not a multipart upload (JSON): small.
SMALL = 1024 * 1024
CHUNK = 1024 * 1024


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes (multipart) or ``SMALL`` (anything
    else) is answered 413, at once when ``Content-Length`` says so, else as soon as that
    much has come."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        upload = kind == b"multipart/form-data"
        limit = self.limit if upload else SMALL
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit, upload, send)
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
    ``_`` and ``-`` (at most 100); ``fallback`` when nothing is left."""
    name = re.sub(r"[^\w.-]", "_", Path((given or "").replace("\\", "/")).name)[:100]
    return name if name.strip("._") else fallback


async def save(upload: UploadFile, folder: Path, fallback: str, names: dict[str, Any]) -> Path:
    """Write ``upload`` into ``folder`` (made by ``JobRunner.staging``) under its plain
    name; records the path → name said in messages in ``names``."""
    name = plain_name(upload.filename, fallback)
    path = folder / name
    if path.exists():  # two fields with one name: the second under its field's
        path = folder / f"{fallback}-{name}"
    with create_private(path) as out:
        while chunk := await upload.read(CHUNK):
            out.write(chunk)
    names[str(path)] = Path((upload.filename or "").replace("\\", "/")).name or name
    return path
