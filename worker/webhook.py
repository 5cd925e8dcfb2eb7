"""``loa webhook``: the ASGI app providers post delivery receipts to (Starlette on uvicorn).

Routes:

- ``/receipts/{provider}`` (GET or POST): one receipt route per provider instance. The
  provider module checks the request is really its own (a signature, or a secret token
  and an address list), then parses it. A receipt is answered 2xx only once it is
  committed to the ledger's inbox (``ledger.receipts``); requests that arrive together
  share one commit (``GroupCommit``). A failed check is 403 and stores nothing; a
  request that is not a receipt is 4xx and stores nothing; a ledger that cannot take it
  is 503, so the provider retries.
- ``/healthz``: 200 when the ledger answers.
- ``/metrics``: Prometheus.

Nothing about a receipt's body is logged: it carries phone numbers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ledger.receipts import Inbound, digest, drain_all, store
from providers import InboundRequest, ProviderConfigError
from worker.logging import get_logger
from worker.runtime import Runtime

log = get_logger("loa.webhook")

#: Receipts are a few hundred bytes; anything much larger is not one.
MAX_BODY = 64 * 1024
FORM = "application/x-www-form-urlencoded"

RECEIPTS = Counter(
    "loa_webhook_receipts_total", "Receipt requests by provider and answer", ["provider", "answer"]
)
LATENCY = Histogram(
    "loa_webhook_seconds",
    "Time from a receipt's arrival to its answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class GroupCommit:
    """Receipts that arrive together are stored in one transaction. Each caller awaits
    ``add``; a single writer task takes whatever is queued (up to ``limit``), stores it in
    a worker thread, and wakes every caller with the outcome: durable, or the error."""

    def __init__(self, runtime: Runtime, limit: int = 500) -> None:
        self.runtime, self.limit = runtime, limit
        self._queue: asyncio.Queue[tuple[Inbound, asyncio.Future[int]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def add(self, inbound: Inbound) -> None:
        """Returns once ``inbound`` is committed. Raises what storing raised."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((inbound, done))
        await done

    async def _write(self) -> None:
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty() and len(group) < self.limit:
                group.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(store, self.runtime.engine, [i for i, _ in group])
            except Exception as exc:  # every caller of this group answers 503
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(0)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()


async def _inbound(request: Request) -> InboundRequest | Response:
    """The request as the provider module checks it: the query string, and a POST's form
    (its size, type and encoding checked first)."""
    query = dict(request.query_params)
    form: dict[str, str] = {}
    if request.method == "POST":
        read = await _form(request)
        if isinstance(read, Response):
            return read
        form = read
    return InboundRequest(
        url=str(request.url),
        query=query,
        form=form,
        headers={k.lower(): v for k, v in request.headers.items()},
        client=request.client.host if request.client else "",
    )


async def _form(request: Request) -> dict[str, str] | Response:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return PlainTextResponse("body too large", status_code=413)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return PlainTextResponse(f"expected {FORM}", status_code=415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return PlainTextResponse("body too large", status_code=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return PlainTextResponse("the body is not UTF-8", status_code=400)
    return dict(parse_qsl(text, keep_blank_values=True))


def make_app(runtime: Runtime) -> Starlette:
    """The webhook for this runtime's provider instances."""
    commits = GroupCommit(runtime)

    async def receipt(request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["provider"]
        try:
            provider = runtime.provider(name)
        except ProviderConfigError:
            return PlainTextResponse("no such provider", status_code=404)
        answer = await _answer(request, name, provider)
        RECEIPTS.labels(name, str(answer.status_code)).inc()
        LATENCY.observe(time.perf_counter() - started)
        return answer

    async def _answer(request: Request, name: str, provider: Any) -> Response:
        inbound_request = await _inbound(request)
        if isinstance(inbound_request, Response):
            return inbound_request
        if not provider.authenticate(inbound_request):
            log.warning("webhook.refused", provider=name, client=inbound_request.client)
            return PlainTextResponse("forbidden", status_code=403)
        fields = inbound_request.fields
        try:
            parsed = provider.parse_receipt(fields)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        inbound = Inbound(
            name,
            parsed.provider_message_id,
            parsed.status,
            parsed.raw_status,
            parsed.code,
            parsed.network,
            digest(name, fields),
        )
        try:
            await commits.add(inbound)
        except Exception as exc:
            log.warning("webhook.ledger_unavailable", provider=name, error=type(exc).__name__)
            return PlainTextResponse("ledger unavailable, try again", status_code=503)
        if parsed.status is None:  # kept raw and flagged, never guessed
            return PlainTextResponse(f"unknown status {parsed.raw_status!r}", status_code=422)
        return PlainTextResponse("OK")

    async def healthz(request: Request) -> Response:
        try:
            await asyncio.to_thread(runtime.ensure_schema)
        except Exception as exc:
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await commits.aclose()

    return Starlette(
        routes=[
            Route("/receipts/{provider}", receipt, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


class Drainer:
    """Applies stored receipts to their messages in a thread of the webhook's process,
    every ``interval`` seconds (worker processes drain too: drainers share the work)."""

    def __init__(self, runtime: Runtime, interval: float = 0.2) -> None:
        self.runtime, self.interval = runtime, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loa-receipts", daemon=True)

    def start(self) -> Drainer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                drain_all(self.runtime.engine)
            except Exception as exc:  # the ledger away for a moment: next time
                log.warning("receipts.drain_failed", error=type(exc).__name__)


def serve(runtime: Runtime, host: str, port: int, drain: bool = True) -> None:
    """Run the webhook until interrupted, applying stored receipts in a thread when
    ``drain``. uvicorn's access log stays off: a receipt's URL can carry a phone number."""
    import uvicorn

    drainer = Drainer(runtime).start() if drain else None
    try:
        uvicorn.run(make_app(runtime), host=host, port=port, access_log=False, log_level="warning")
    finally:
        if drainer is not None:
            drainer.stop()
