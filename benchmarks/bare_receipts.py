"""The floor ``benchmarks.receipts`` judges ``loa webhook`` against: a bare ASGI app on the
same server (uvicorn, httptools, the same loop and process count) that commits the same
rows to a table like the inbox with the same driver (psycopg 3), and nothing else.

For each POST it reads the body, takes the message id and status out of the form (the
least a receipt needs), names it by its body's SHA-256, and commits the row with the others
that arrived meanwhile, in one ``executemany`` of the same ``INSERT … ON CONFLICT (digest)
DO NOTHING`` the inbox takes (Loa group-commits, so the floor does too: one commit per
request would measure a different design, not Loa's overhead), then answers 200. No
signature check, routing, provider, size or type checks, metrics, SQLAlchemy or pool.

    python -m benchmarks.bare_receipts --port 8123 --dsn postgresql://… [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import psycopg

DSN_ENV = "BARE_RECEIPTS_DSN"
TABLE = "bare_receipts"
COLUMNS = (
    "provider, provider_message_id, status, raw_status, code, network, digest, state, "
    "received_at, message_id"
)
INSERT = (
    f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (digest) DO NOTHING"
)
LIMIT = 500  # the most rows in one commit, as Loa's GroupCommit


class Commits:
    """One connection; a writer task commits whatever queued while the last commit ran."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.queue: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def add(self, row: tuple[Any, ...]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.queue.append((row, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self.write())
        await done

    async def write(self) -> None:
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(self.dsn)
        while self.queue:
            group, self.queue = self.queue[:LIMIT], self.queue[LIMIT:]
            at = datetime.now(UTC)
            try:
                async with self.conn.transaction(), self.conn.cursor() as cursor:
                    await cursor.executemany(INSERT, [(*row[:8], at, row[8]) for row, _ in group])
            except Exception as exc:
                for _, done in group:
                    done.set_exception(exc)
            else:
                for _, done in group:
                    done.set_result(None)


commits = Commits(os.environ.get(DSN_ENV, ""))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        if commits.conn is not None:
            await commits.conn.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    status = 200
    if scope["method"] == "POST":
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fields = dict(parse_qsl(body.decode()))
        raw = fields.get("MessageStatus", "")
        row = ("intl", fields.get("MessageSid", ""), raw, raw, None, None)
        row += (hashlib.sha256(body).hexdigest(), "pending", None)
        try:
            await commits.add(row)
        except Exception:
            status = 503
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"OK"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--dsn", required=True, help="postgresql://… (psycopg's own form)")
    args = parser.parse_args()
    os.environ[DSN_ENV] = args.dsn  # read by each worker process on import
    uvicorn.run(
        "benchmarks.bare_receipts:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        http="httptools",
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
