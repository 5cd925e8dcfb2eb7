"""Small hostile servers for the providers' HTTP clients, started in the test: each runs
on an event loop of its own in a thread of the test process, so a provider's client (or
a `loa` command in a subprocess) can be pointed at it.

``web_app(handler)``: an aiohttp app answering every path with ``handler`` (it records
what it was asked); ``raw(handler)``: a bare TCP server, for what no HTTP framework will
send (an answer's headers one line at a time).
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Hostile:
    """A running server: its URL, every request it received (method, path, body), and
    how far a streaming or dripping handler got (``sent``: bytes or lines)."""

    url: str
    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    sent: int = 0


Handler = Callable[[web.Request, Hostile], Awaitable[web.StreamResponse]]
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Hostile], Awaitable[None]]


@contextmanager
def _on_a_loop(
    start: Callable[[], Awaitable[tuple[int, Callable[[], Awaitable[None]]]]],
) -> Iterator[int]:
    """Run ``start`` (returning the port and how to stop) on a loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port, stop = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
        try:
            yield port
        finally:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@contextmanager
def web_app(handler: Handler) -> Iterator[Hostile]:
    """An aiohttp app that answers any method and path with ``handler(request, server)``
    after noting the request in ``server.received``."""
    server = Hostile("")

    async def noted(request: web.Request) -> web.StreamResponse:
        server.received.append((request.method, request.path_qs, await request.read()))
        return await handler(request, server)

    async def start() -> tuple[int, Callable[[], Awaitable[None]]]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", noted)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner.addresses[0][1], runner.cleanup

    with _on_a_loop(start) as port:
        server.url = f"http://127.0.0.1:{port}"
        yield server


@contextmanager
def raw(handler: RawHandler) -> Iterator[Hostile]:
    """A bare TCP server: ``handler(reader, writer, server)`` per connection."""
    server = Hostile("")
    tasks: set[asyncio.Task] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer, server)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up (or the test is over): what the test wants to see
        finally:
            writer.close()
            tasks.discard(task)

    async def start() -> tuple[int, Callable[[], Awaitable[None]]]:
        listening = await asyncio.start_server(connected, "127.0.0.1", 0)

        async def stop() -> None:
            listening.close()
            for task in list(tasks):
                task.cancel()
            await listening.wait_closed()

        return listening.sockets[0].getsockname()[1], stop

    with _on_a_loop(start) as port:
        server.url = f"http://127.0.0.1:{port}"
        yield server


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """A request's head and body (by its Content-Length), as a raw handler reads it."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")


def drip(lines: int, every: float, last: bytes) -> RawHandler:
    """A handler answering 200, then one header line every ``every`` seconds, ``lines``
    of them, then ``last`` (the rest of the head and a body): whole, but only after
    ``lines * every`` seconds, each line well within any read timeout."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Hostile
    ) -> None:
        server.received.append(("POST", "", await read_request(reader)))
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(lines):
            writer.write(f"X-Drip-{i}: .\r\n".encode())
            await writer.drain()
            server.sent += 1
            await asyncio.sleep(every)  # the attack itself: an answer at a crawl
        writer.write(last)
        await writer.drain()

    return handler


def gzip_of_zeros(size: int) -> bytes:
    """``size`` zero bytes, gzipped (a thousandth of it): a decompression bomb."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + packer.flush()
