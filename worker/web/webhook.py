"""``loa webhook``: the ASGI app providers post delivery receipts to (Starlette on uvicorn).

Routes:

- ``/receipts/{provider}`` (GET or POST): one receipt route per provider instance. The
  provider module checks the request is really its own (a signature, or a secret token
  and an address list), then parses it. A receipt is answered 2xx only once it is
  committed to the ledger's inbox (``ledger.receipts``); requests that arrive together
  share one commit (``GroupCommit``). A failed check is 403 and stores nothing; a
  request that is not a receipt is 4xx and stores nothing; a ledger that cannot take it
  is 503, so the provider retries.
- ``/arrivals`` (POST): batches of arrival events (``worker.web.arrival_route``).
- ``/healthz``: 200 when the ledger answers.

Prometheus metrics are *not* on this port, which faces the internet through a proxy:
they are served apart, on ``LOA_METRICS_HOST`` (loopback unless told otherwise) and
``LOA_WEBHOOK_METRICS_PORT``. Failed checks are slowed down per address
(``worker.web.auth_throttle``), and each request must arrive whole within
``LOA_WEBHOOK_REQUEST_SECONDS`` (``worker.web.http_deadline``).

Nothing about a receipt's body is logged: it carries phone numbers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ledger.receipts import Inbound, drain_all, store
from worker.inbox import GroupCommit
from worker.logging import get_logger
from worker.runtime import Runtime
from worker.web.arrival_route import ArrivalRoute
from worker.web.auth_throttle import AuthThrottle
from worker.web.receipt_route import PREFIX, ReceiptRoute, Receive, Scope, Send

log = get_logger("loa.webhook")


def make_app(runtime: Runtime) -> ASGIApp:
    """The webhook for this runtime's provider instances."""
    commits: GroupCommit[Inbound] = GroupCommit(lambda rows: store(runtime.engine, rows))
    throttle = AuthThrottle()  # one per process, shared by the routes that check keys
    receipts = ReceiptRoute(runtime.provider, commits.add, throttle)

    async def healthz(request: Request) -> Response:
        try:
            await asyncio.to_thread(runtime.ensure_schema)
        except Exception as exc:
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await commits.aclose()

    arrivals = ArrivalRoute(runtime, throttle)
    rest = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/arrivals", arrivals.handle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await receipts(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


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


def app_from_settings() -> Starlette:
    """The app of one webhook worker process (``--workers``): its own runtime from the
    environment's settings."""
    from worker.runtime import get_runtime

    return make_app(get_runtime())


def serve(runtime: Runtime, host: str, port: int, drain: bool = True, workers: int = 1) -> None:
    """Run the webhook until interrupted, in ``workers`` processes (Python runs one core
    per process), applying stored receipts in a thread of this one when ``drain``, and
    serving metrics on their own address (``LOA_METRICS_HOST``,
    ``LOA_WEBHOOK_METRICS_PORT``). uvicorn's access log stays off: a receipt's URL can
    carry a phone number.

    Raises:
        OSError: the metrics address cannot be listened on.
    """
    import uvicorn

    settings = runtime.settings
    options: dict[str, Any] = {
        "access_log": False,
        "log_level": "warning",
        "http": "worker.web.http_deadline:DeadlineProtocol",
        "timeout_keep_alive": 5,
    }
    with _metrics(settings, workers):
        drainer = Drainer(runtime).start() if drain else None
        try:
            if workers > 1:
                target = "worker.web.webhook:app_from_settings"
                uvicorn.run(target, factory=True, host=host, port=port, workers=workers, **options)
            else:
                uvicorn.run(make_app(runtime), host=host, port=port, **options)
        finally:
            if drainer is not None:
                drainer.stop()


@contextmanager
def _metrics(settings: Any, workers: int) -> Iterator[None]:
    """Prometheus on its own listener. With several processes, each writes its figures to
    a folder of this run (prometheus-client's multiprocess mode, chosen by the variable
    before the processes start) and this one adds them up when asked."""
    if not settings.webhook_metrics_port:
        yield
        return
    import prometheus_client as prom
    from prometheus_client import multiprocess

    folder = None
    registry = prom.REGISTRY
    if workers > 1:
        folder = tempfile.mkdtemp(prefix="loa-webhook-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    server, thread = prom.start_http_server(
        settings.webhook_metrics_port, settings.metrics_host, registry
    )
    try:
        yield
    finally:
        server.shutdown()
        thread.join(timeout=5)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
