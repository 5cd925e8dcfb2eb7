"""A deadline for receiving each request, and a cap on connections, for ``loa webhook``.

uvicorn bounds the time *between* requests (``timeout_keep_alive``) and restarts that
timer on every byte received, but nothing bounds the time to *receive* a request: a
client trickling its headers or body a byte at a time holds its connection for as long
as it likes, and a few thousand such clients hold every file descriptor (Slowloris,
CVE-2007-6750; uvicorn has no setting for it, and an ASGI middleware runs only once the
headers are in, too late). This protocol is uvicorn's own (``httptools``) with:

- a deadline of ``LOA_WEBHOOK_REQUEST_SECONDS`` from a connection's first byte (or the
  end of its previous response) to the end of the request's body; a connection past it
  is closed. The application's own time (a ledger commit) is not counted;
- at most ``LOA_WEBHOOK_MAX_CONNECTIONS`` open connections per process: one more is
  answered 503 at once and closed;
- at most ``MAX_HEAD`` bytes of request line and headers: more is answered 431 and the
  connection closed.

uvicorn imports it by name (``worker.web.http_deadline:DeadlineProtocol``) in each of its
processes; the settings are read there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from worker.logging import get_logger
from worker.settings import get_settings

log = get_logger("loa.webhook")


#: A request's line and headers may take this many bytes at most (h11's own default;
#: httptools has no limit, and a client streaming headers for the whole deadline once
#: grew the process by hundreds of megabytes). Receipts and arrivals need well under 2 KB.
MAX_HEAD = 16 * 1024

#: The answer to headers over ``MAX_HEAD``, written at once and closed.
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
    b"charset=utf-8\r\ncontent-length: 18\r\nconnection: close\r\n\r\nheaders too large\n"
)
#: The answer of a connection beyond the cap, written at once and closed.
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 1\r\ncontent-length: 22\r\nconnection: close\r\n\r\n"
    b"too many connections\r\n"
)


class DeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests must arrive whole within a deadline
    (``request_seconds``) on one of at most ``max_connections`` connections: both from
    the settings unless a subclass sets them."""

    request_seconds: float | None = None
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.request_seconds is None or self.max_connections is None:
            settings = get_settings()
            self.request_seconds = float(settings.webhook_request_seconds)
            self.max_connections = settings.webhook_max_connections
        self._deadline: asyncio.TimerHandle | None = None
        # Receiving a request line and headers: how many bytes so far, and the last few
        # of the previous piece (a blank line can be split between two pieces).
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > (self.max_connections or 0):
            log.warning("webhook.too_many_connections", limit=self.max_connections)
            transport.write(BUSY)  # said before its request: a proxy shows it as a 503
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # Only the head counts: a body that came in the same piece is the route's to
            # bound (an arrivals batch of 1,000 events is 130 KB, and once got 431).
            window = self._tail + data
            ends = [
                i + len(blank) for blank in (b"\r\n\r\n", b"\n\n") if (i := window.find(blank)) >= 0
            ]
            self._head_bytes += min(ends) - len(self._tail) if ends else len(data)
            self._tail = window[-3:]
            if self._head_bytes > MAX_HEAD:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        log.warning("webhook.headers_too_large", limit=MAX_HEAD)
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            # A request before it (pipelined) is still being answered: closing under it
            # would make its answer fail. Read no more, and close after that answer.
            self.transport.pause_reading()
            self.cycle.keep_alive = False
            return
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the request is in: what the application takes is its own
        self._in_head, self._head_bytes, self._tail = True, 0, b""  # bytes now: the next one

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_seconds or 0, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning("webhook.request_too_slow", seconds=self.request_seconds)
            self.transport.close()
