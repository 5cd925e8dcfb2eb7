"""What every HTTP provider shares: one connection pool and one classifier.

The classifier is the same for every gateway (after courier's): a connection that could
not be made, or a 5xx, was not processed and may be retried; 429 is throttling, retried
no sooner than its ``Retry-After``; 401/403 mean our credentials were refused, which no
retry will fix (halt); any other non-2xx is a permanent refusal of this message. A read
timeout or a connection dropped *after* the request went out is ambiguous: the gateway
may have taken the message.

The client never retries by itself: retries are counted in one place, the worker (see
``worker.sending.dispatch``), so they do not multiply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from pydantic import Field

from providers.base import ErrorKind, ProviderConfig, SendError

_JSON = {"Content-Type": "application/json; charset=utf-8"}


class HttpProviderConfig(ProviderConfig):
    """Settings every HTTP provider has: where it is (overridable for a regional edge or a
    local fake), how long to wait to connect and for an answer, and how many sockets."""

    base_url: str
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    read_timeout: float = Field(default=10.0, gt=0, le=120)
    connections: int = Field(default=64, ge=1, le=1024)

    def http_client(self) -> HttpClient:
        return HttpClient(self.base_url, self.connect_timeout, self.read_timeout, self.connections)


class HttpClient:
    """A keep-alive pool (aiohttp) for one provider instance, on the sending loop.

    Parameters:
        base_url: scheme and host (``https://rest.esms.vn``), overridable for a local fake.
        connect_timeout, read_timeout: seconds; every call has both (dramatiq's time limit
            cannot interrupt a blocked socket).
        connections: sockets kept open; sends beyond that wait for one.
    """

    def __init__(
        self, base_url: str, connect_timeout: float, read_timeout: float, connections: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        """The session of the running loop (one per loop: a session cannot change loops)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=10)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, raise_for_status=False
            )
            self._loop = loop
        return self._session

    async def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON; returns the 2xx answer's JSON.

        Raises:
            SendError: the request failed or the answer was not 2xx, classified.
            ValueError: a 2xx answer that is not JSON (the caller decides what that means).
        """
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            async with self._session_here().post(
                self.base_url + path, data=body, headers=_JSON
            ) as response:
                if not 200 <= response.status < 300:
                    raise classify_status(response.status, response.headers.get("Retry-After"))
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_transport(exc) from None
        return json.loads(body)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[int, str, Mapping[str, str]]:
        """One request to a full URL, for a provider's own SDK to send through this pool
        and its timeouts; returns the status, text and headers, whatever the status.

        Raises:
            SendError: the request got no HTTP answer, classified.
        """
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        try:
            async with self._session_here().request(
                method, url, params=params, data=data, headers=headers, allow_redirects=False
            ) as response:
                return response.status, await response.text(), response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_transport(exc) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def classify_transport(error: BaseException) -> SendError:
    """A request that got no HTTP answer: retryable if it never left, else ambiguous."""
    if isinstance(error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return SendError(
            ErrorKind.RETRYABLE, "connect_error", "could not connect", provider_wide=True
        )
    if isinstance(error, TimeoutError):  # aiohttp's SocketTimeoutError is one too
        return SendError(ErrorKind.AMBIGUOUS, "read_timeout", "no answer after sending")
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return SendError(ErrorKind.AMBIGUOUS, "connection_lost", "dropped after sending")
    return SendError(ErrorKind.AMBIGUOUS, "transport_error", type(error).__name__)


def classify_status(status: int, retry_after: str | None = None) -> SendError:
    """A non-2xx answer, by status code alone (the gateway's own codes come later)."""
    code = f"http_{status}"
    if status == 429:
        wait = parse_retry_after(retry_after)
        return SendError(
            ErrorKind.RETRYABLE, code, "throttled", wait, provider_wide=True, throttled=True
        )
    if status >= 500:
        wait = parse_retry_after(retry_after)
        return SendError(ErrorKind.RETRYABLE, code, "gateway error", wait, provider_wide=True)
    if status in (401, 403):
        return SendError(ErrorKind.HALT, code, "credentials refused")
    return SendError(ErrorKind.PERMANENT, code, "refused")


#: The longest wait a provider may ask for (seconds): longer, and a typo or a hostile
#: answer would stop the provider for years without anyone being told.
MAX_RETRY_AFTER = 3600.0


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds or an HTTP date),
    between 0 and ``MAX_RETRY_AFTER``; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))
