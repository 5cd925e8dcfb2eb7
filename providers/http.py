"""What every HTTP provider shares: one connection pool and one classifier.

The classifier is the same for every gateway (after courier's): a connection that could
not be made, or a 5xx, was not processed and may be retried; 429 is throttling, retried
no sooner than its ``Retry-After``; 401/403 mean our credentials were refused, which no
retry will fix (halt); any other non-2xx is a permanent refusal of this message. A read
timeout or a connection dropped *after* the request went out is ambiguous: the gateway
may have taken the message.

The client never retries by itself: retries are counted in one place, the worker (see
``worker.sending.dispatch``), so they do not multiply.

Nor does it trust the far end. It never follows a redirect (a 3xx is a provider error,
classified like any unexpected status): followed, a 307 from a hijacked or mistyped base
URL re-sent our credentials, numbers and texts to wherever it pointed. Every request has
a deadline for its whole answer (``request_timeout``), not only per read: a server sending
one header line a second once held a send for minutes, while the reaper resent the
message. A send that hits it may have been taken: ambiguous, like a read timeout. And an
answer is read up to ``MAX_ANSWER_BYTES``: more is a provider error (a 2 GB answer once
took 4.6 GB of memory).
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, field_validator

from providers.base import DETAIL_LENGTH, ErrorKind, ProviderConfig, SendError, storable

_JSON = {"Content-Type": "application/json; charset=utf-8"}
#: The largest answer read from a provider (bytes, after decompression). eSMS and Twilio
#: answer a few hundred bytes; more than this is not an answer of theirs.
MAX_ANSWER_BYTES = 1 << 20
_CHUNK = 64 * 1024


class UnreadableAnswer(ValueError):
    """A 2xx answer that is not JSON: what it was, for the caller to say (``status``,
    ``content_type``, as the provider sent them; the text is ``HTTP 200, text/html``)."""

    def __init__(self, status: int, content_type: str) -> None:
        self.status, self.content_type = status, content_type
        super().__init__(f"HTTP {status}, {content_type or 'no content type'}")


class HttpProviderConfig(ProviderConfig):
    """Settings every HTTP provider has: where it is (overridable for a regional edge or a
    local fake), how long to wait to connect and for an answer, and how many sockets."""

    base_url: str
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    read_timeout: float = Field(default=10.0, gt=0, le=120)
    request_timeout: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="seconds for a whole request, connecting to the answer's last byte "
        "(default: connect_timeout + read_timeout); a send past it may have gone out",
    )
    connections: int = Field(default=64, ge=1, le=1024)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http or https URL with a host: ``file:///etc/passwd``, ``ftp://…`` or a bare
        ``127.0.0.1:8080`` passed the settings and failed only at the first send."""
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host, e.g. https://rest.esms.vn")
        return value

    @property
    def deadline(self) -> float:
        """Seconds a whole request may take: ``request_timeout``, else the connect and
        read timeouts together."""
        return self.request_timeout or self.connect_timeout + self.read_timeout

    def http_client(self) -> HttpClient:
        return HttpClient(
            self.base_url,
            self.connect_timeout,
            self.read_timeout,
            self.connections,
            deadline=self.deadline,
        )


class HttpClient:
    """A keep-alive pool (aiohttp) for one provider instance, on the sending loop.

    Parameters:
        base_url: scheme and host (``https://rest.esms.vn``), overridable for a local fake.
        connect_timeout, read_timeout: seconds; every call has both (dramatiq's time limit
            cannot interrupt a blocked socket).
        connections: sockets kept open; sends beyond that wait for one.
        deadline: seconds for a whole request, its answer read to the end (default: the
            connect and read timeouts together): a server answering a byte at a time
            cannot hold a send longer.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        connections: int,
        deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline or connect_timeout + read_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=self.deadline, connect=connect_timeout, sock_read=read_timeout
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

    async def post_json(
        self, path: str, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any:
        """POST ``payload`` as JSON (with ``headers`` besides the content type); returns
        the 2xx answer's JSON. Redirects are not followed; the answer must come whole
        within the deadline and ``MAX_ANSWER_BYTES``.

        Raises:
            SendError: the request failed or the answer was not 2xx (a redirect included),
                too large or too late, classified.
            UnreadableAnswer: a 2xx answer that is not JSON (a ``ValueError``: the caller
                decides what that means).
        """
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            async with self._session_here().post(
                self.base_url + path,
                data=body,
                headers={**_JSON, **headers} if headers else _JSON,
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise classify_status(
                        response.status,
                        response.headers.get("Retry-After"),
                        response.headers.get("Location"),
                    )
                body = await _read_capped(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_transport(exc) from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past all sense
            kind = storable(response.content_type, DETAIL_LENGTH // 4)
            raise UnreadableAnswer(response.status, kind) from None

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
        """One request to a full URL, for a provider's own SDK to send through this pool,
        its timeouts and its deadline; returns the status, text and headers of any answer
        but a redirect (never followed).

        Raises:
            SendError: the request got no whole HTTP answer in time, was redirected, or
                its answer was larger than ``MAX_ANSWER_BYTES``, classified.
        """
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        try:
            async with self._session_here().request(
                method, url, params=params, data=data, headers=headers, allow_redirects=False
            ) as response:
                if 300 <= response.status < 400:
                    raise classify_status(
                        response.status, None, response.headers.get("Location", "")
                    )
                body = await _read_capped(response)
                return response.status, _text(body, response.charset), response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_transport(exc) from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body, refused past ``MAX_ANSWER_BYTES`` (said by its length, or
    counted as it comes, decompressed) before more is held in memory.

    Raises:
        SendError: too large: a 2xx may have been taken (ambiguous, ``bad_answer``);
            any other status is classified by itself.
    """
    declared = response.content_length
    if declared is None or declared <= MAX_ANSWER_BYTES:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    if not 200 <= response.status < 300:
        raise classify_status(response.status, response.headers.get("Retry-After"))
    what = f"HTTP {response.status}, {response.content_type or 'no content type'}"
    detail = f"an answer of more than {MAX_ANSWER_BYTES // (1 << 20)} MB ({what})"
    raise SendError(ErrorKind.AMBIGUOUS, "bad_answer", detail)


def _text(body: bytes, charset: str | None) -> str:
    """The body as text, in the charset the answer names if Python knows it, else UTF-8;
    bytes that are not of it replaced (an SDK parses the text, never trusts it)."""
    try:
        encoding = codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        encoding = "utf-8"
    return body.decode(encoding, errors="replace")


def failed_check(provider: str, base_url: str, error: SendError) -> str:
    """What an account check that got no usable answer says, on one line: the HTTP
    status a provider answered (a redirect with where to), or what kept the answer away
    (``eSMS answered HTTP 307 (redirect to https://…, not followed)``)."""
    if error.code.startswith("http_"):
        return f"{provider} answered HTTP {error.code[5:]} ({error.detail})"
    if error.code == "connect_error":
        return f"cannot reach {base_url}: {error.detail}"
    return f"no usable answer from {base_url}: {error.detail}"


def classify_transport(error: BaseException) -> SendError:
    """A request that got no whole HTTP answer: retryable if it never left, else
    ambiguous (the read timeout, the request's deadline, a dropped connection)."""
    if isinstance(error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return SendError(
            ErrorKind.RETRYABLE, "connect_error", "could not connect", provider_wide=True
        )
    if isinstance(error, aiohttp.SocketTimeoutError):
        return SendError(ErrorKind.AMBIGUOUS, "read_timeout", "no answer after sending")
    if isinstance(error, TimeoutError):  # the deadline: the answer did not come whole
        return SendError(
            ErrorKind.AMBIGUOUS, "read_timeout", "no whole answer within the request's deadline"
        )
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return SendError(ErrorKind.AMBIGUOUS, "connection_lost", "dropped after sending")
    return SendError(ErrorKind.AMBIGUOUS, "transport_error", type(error).__name__)


def classify_status(
    status: int, retry_after: str | None = None, location: str | None = None
) -> SendError:
    """A non-2xx answer, by status code alone (the gateway's own codes come later). A
    redirect (3xx, its ``Location`` named) is never followed: refused, like any status
    no rule knows."""
    code = f"http_{status}"
    if 300 <= status < 400:
        where = storable(location, DETAIL_LENGTH // 2) if location else "nowhere said"
        return SendError(ErrorKind.PERMANENT, code, f"redirect to {where}, not followed")
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
