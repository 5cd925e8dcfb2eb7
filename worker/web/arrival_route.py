"""``POST /arrivals`` on ``loa webhook``: a carrier's network feed or a scheduler posts a
batch of arrival events; they are ingested exactly as a file's (``worker.arrivals.ingest``),
and a retried POST welcomes nobody twice (event ids are taken once).

    POST /arrivals
    X-Api-Key: <LOA_ARRIVALS_API_KEY>
    Content-Type: application/json

    {"events": [{"event_id": "…", "phone": "+821012345678", "arrived_at":
                 "2026-11-28T09:55:00+07:00", "area": "586", "language": "ko"}]}

Answers: 200 with what was taken (``welcomed``, ``skipped`` by reason, each ``rejected``
event's index, reason and field); 400 a body that is not JSON (or nested too deeply) or
holds no events; 401 no key; 403 a wrong key; 404 arrivals not configured
(``LOA_ARRIVALS_RULES``); 413 more than ``LOA_ARRIVALS_MAX_BATCH`` events or a body over
a megabyte; 415 not JSON; 429 too many failed keys from this address (``Retry-After``;
``worker.web.auth_throttle``); 503 the ledger cannot take them now (nothing was taken: post
again); 500 only for a fault of Loa's own (logged; posting again would not help).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from worker.arrivals.ingest import UNAVAILABLE
from worker.logging import get_logger
from worker.runtime import Runtime
from worker.web.auth_throttle import AuthThrottle

log = get_logger("loa.arrivals")

MAX_BODY = 1024 * 1024
#: How long one ingest's view of the residents and suppression lists is used.
REFRESH_SECONDS = 60.0


class ArrivalRoute:
    """The endpoint; one ingest at a time per process (an ``Ingest`` keeps planners)."""

    def __init__(self, runtime: Runtime, throttle: AuthThrottle | None = None) -> None:
        self.runtime = runtime
        self.throttle = throttle or AuthThrottle()
        self._lock = threading.Lock()
        self._ingest: Any = None
        self._made_at = 0.0

    async def handle(self, request: Request) -> JSONResponse:
        settings = self.runtime.settings
        if settings.arrivals_rules is None:
            return _error(404, "arrivals are not configured here (LOA_ARRIVALS_RULES)")
        client = (request.client or ("",))[0]
        wait = self.throttle.wait(f"arrivals|{client}")
        if wait > 0:  # too many failed keys from there: this one is not even looked at
            response = _error(429, "too many failed attempts; wait")
            response.headers["retry-after"] = str(math.ceil(wait))
            return response
        given = request.headers.get("x-api-key", "")
        if not given:
            self._failed(client, "no key")
            return _error(401, "send the API key in X-Api-Key")
        expected = settings.arrivals_api_key
        if expected is None or not hmac.compare_digest(
            given.encode(), expected.get_secret_value().encode()
        ):
            self._failed(client, "wrong key")
            return _error(403, "wrong API key")
        if (
            request.headers.get("content-type", "").split(";")[0].strip().lower()
            != "application/json"
        ):
            return _error(415, "send application/json")
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > MAX_BODY:
                return _error(413, f"the body is over {MAX_BODY:,} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            return _error(400, f"not JSON: {exc}")
        except RecursionError:  # 200,000 nested brackets: refused, not a crash
            return _error(400, "not JSON Loa takes: nested too deeply")
        events = document.get("events") if isinstance(document, dict) else document
        if not isinstance(events, list) or not events:
            return _error(400, 'expected {"events": [ … ]} with at least one event')
        if len(events) > settings.arrivals_max_batch:
            return _error(
                413, f"{len(events):,} events: at most {settings.arrivals_max_batch:,} a request"
            )
        try:
            result = await asyncio.to_thread(self._take, events)
        except UNAVAILABLE as exc:  # the ledger or Redis away: the chunk was rolled back
            log.warning("arrivals.unavailable", error=type(exc).__name__)
            return _error(503, "cannot take arrivals now; post them again")
        except Exception as exc:
            # Not "post again": the same body would fail the same way, for ever. Every
            # event is checked as a row first, so this is Loa's fault: logged, and said.
            log.error("arrivals.failed", error=type(exc).__name__)
            return _error(500, "Loa could not take these arrivals; nothing was taken")
        figures = result.as_dict()
        rejected = [{"index": i, "reason": r, "field": f} for i, r, f, _ in result.rejects]
        return JSONResponse({**figures, "rejected": rejected})

    def _failed(self, client: str, reason: str) -> None:
        """Count a failed key, and log it (never the key); once when the address's
        failures run out, since from then on it is refused before anything is checked."""
        slowed = self.throttle.failed(f"arrivals|{client}")
        log.warning("arrivals.refused", client=client, reason=reason)
        if slowed:
            log.warning("arrivals.throttled", client=client, every=self.throttle.every)

    def _take(self, events: list[Any]) -> Any:
        from campaigns.arrivals import load_arrivals
        from worker.arrivals.ingest import Ingest

        with self._lock:
            if self._ingest is None or time.monotonic() - self._made_at > REFRESH_SECONDS:
                rules = self.runtime.settings.arrivals_rules
                assert rules is not None
                self._ingest = Ingest(self.runtime, load_arrivals(rules))
                self._made_at = time.monotonic()
            return self._ingest.run(enumerate(events))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
