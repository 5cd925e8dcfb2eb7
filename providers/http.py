"""What every HTTP provider shares: one connection pool and one classifier.

The classifier is the same for every gateway (after courier's): a connection that could
not be made, or a 5xx, was not processed and may be retried; 429 is throttling, retried
no sooner than its ``Retry-After``; 401/403 mean our credentials were refused, which no
retry will fix (halt); any other non-2xx is a permanent refusal of this message. A read
timeout or a connection dropped *after* the request went out is ambiguous: the gateway
may have taken the message.

The pool never retries by itself: retries are counted in one place, the worker (see
``worker.dispatch``), so they do not multiply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from providers.base import ErrorKind, SendError


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """A thread-safe keep-alive pool for one provider instance.

    Parameters:
        base_url: scheme and host (``https://rest.esms.vn``), overridable for a local fake.
        connect_timeout, read_timeout: seconds; every call has both (dramatiq's time limit
            cannot interrupt a blocked socket).
        connections: sockets kept open; callers beyond that wait for one.
    """

    def __init__(
        self, base_url: str, connect_timeout: float, read_timeout: float, connections: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=connections,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        )

    def post_json(self, path: str, payload: dict[str, Any]) -> HttpAnswer:
        """POST ``payload`` as JSON.

        Raises:
            SendError: the request failed or the answer was not 2xx, classified.
        """
        try:
            response = self._pool.request(
                "POST",
                self.base_url + path,
                body=json.dumps(payload, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except HTTPError as exc:
            raise classify_transport(exc) from None
        answer = HttpAnswer(response.status, response.data, dict(response.headers))
        if not 200 <= answer.status < 300:
            raise classify_status(answer.status, answer.headers.get("Retry-After"))
        return answer

    def close(self) -> None:
        self._pool.clear()


def classify_transport(error: HTTPError) -> SendError:
    """A request that got no HTTP answer: retryable if it never left, else ambiguous."""
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, NewConnectionError | ConnectTimeoutError):
        return SendError(
            ErrorKind.RETRYABLE, "connect_error", "could not connect", provider_wide=True
        )
    if isinstance(reason, ReadTimeoutError) or isinstance(error, ReadTimeoutError):
        return SendError(ErrorKind.AMBIGUOUS, "read_timeout", "no answer after sending")
    if isinstance(reason, ProtocolError) or isinstance(error, ProtocolError):
        return SendError(ErrorKind.AMBIGUOUS, "connection_lost", "dropped after sending")
    return SendError(ErrorKind.AMBIGUOUS, "transport_error", type(reason).__name__)


def classify_status(status: int, retry_after: str | None = None) -> SendError:
    """A non-2xx answer, by status code alone (the gateway's own codes come later)."""
    code = f"http_{status}"
    if status == 429 or status >= 500:
        detail = "throttled" if status == 429 else "gateway error"
        wait = parse_retry_after(retry_after)
        return SendError(ErrorKind.RETRYABLE, code, detail, wait, provider_wide=True)
    if status in (401, 403):
        return SendError(ErrorKind.HALT, code, "credentials refused")
    return SendError(ErrorKind.PERMANENT, code, "refused")


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
