"""What every fake gateway shares: scripted faults, a record of what arrived, the control
endpoints (not the provider's) and start-up.

Faults are scripted, at start-up or live over HTTP, each for some seconds or for some
requests, first match wins; each fake says which kinds it knows (``http``, ``code``,
``hang``, ``retry_after``). Control endpoints: ``GET /_fake/received`` (every request,
in order), ``POST /_fake/faults`` (add faults), ``POST /_fake/config`` (latency, throttling: see ``Book``),
``POST /_fake/reset``. A fake prints ``listening on http://127.0.0.1:PORT`` once it
accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One scripted misbehaviour, active until ``until`` (monotonic) or for ``left``
    more requests."""

    http: int | None = None
    code: str | None = None
    retry_after: float | None = None
    hang: bool = False
    until: float | None = None
    left: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Fault:
        seconds, requests = raw.get("seconds"), raw.get("requests")
        if (seconds is None) == (requests is None):
            raise ValueError("a fault lasts either 'seconds' or 'requests'")
        fault = cls(
            http=raw.get("http"),
            code=raw.get("code"),
            retry_after=raw.get("retry_after"),
            hang=bool(raw.get("hang", False)),
            until=None if seconds is None else time.monotonic() + float(seconds),
            left=None if requests is None else int(requests),
        )
        if sum((fault.http is not None, fault.code is not None, fault.hang)) != 1:
            raise ValueError("a fault is one of 'http', 'code' or 'hang'")
        return fault

    def live(self) -> bool:
        if self.until is not None:
            return time.monotonic() < self.until
        return bool(self.left)


@dataclass
class Book:
    """A fake's state: its latency, its faults and what it received (one entry per
    request: wall-clock arrival, phone, the caller's id for it, the answer given).

    Besides scripted faults, a fake can throttle the way carriers do (``/_fake/config``):
    ``throttle_every`` N answers every Nth request 429; ``hidden_rate`` R answers 429 to
    any request that would make more than R taken in the last second (a limit the
    caller was never told); ``throttle_retry_after`` is the ``Retry-After`` of both
    (none when unset)."""

    latency_ms: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    received: list[tuple[float, str, str, str]] = field(default_factory=list)
    throttle_every: int = 0
    hidden_rate: float = 0.0
    throttle_retry_after: float | None = None
    _requests: int = 0
    _taken: deque[float] = field(default_factory=deque)

    def _throttle(self) -> Fault | None:
        self._requests += 1
        if self.throttle_every and self._requests % self.throttle_every == 0:
            return Fault(http=429, retry_after=self.throttle_retry_after)
        if self.hidden_rate:
            now = time.monotonic()
            while self._taken and self._taken[0] <= now - 1.0:
                self._taken.popleft()
            if len(self._taken) >= self.hidden_rate:
                return Fault(http=429, retry_after=self.throttle_retry_after)
            self._taken.append(now)
        return None

    def fault(self) -> Fault | None:
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        self.faults = [f for f in self.faults if f.live()]
        for fault in self.faults:
            if fault.left is not None:
                fault.left -= 1
            return fault
        return None

    def clear(self) -> None:
        self.faults.clear()
        self.received.clear()
        self.throttle_every, self.hidden_rate, self.throttle_retry_after = 0, 0.0, None
        self._requests = 0
        self._taken.clear()


async def received(request: web.Request) -> web.Response:
    gateway: Book = request.app["gateway"]
    since = int(request.query.get("since", "0"))
    rows = gateway.received[since:]
    return web.json_response(
        {"count": len(gateway.received), "received": [list(row) for row in rows]}
    )


async def add_faults(request: web.Request) -> web.Response:
    gateway: Book = request.app["gateway"]
    try:
        raw = await request.json()
        new = [Fault.parse(item) for item in (raw if isinstance(raw, list) else [raw])]
    except (ValueError, TypeError, AttributeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    gateway.faults.extend(new)
    return web.json_response({"faults": len(gateway.faults)})


async def configure(request: web.Request) -> web.Response:
    gateway: Book = request.app["gateway"]
    raw = await request.json()
    if "latency_ms" in raw:
        gateway.latency_ms = float(raw["latency_ms"])
    if "throttle_every" in raw:
        gateway.throttle_every = int(raw["throttle_every"])
    if "hidden_rate" in raw:
        gateway.hidden_rate = float(raw["hidden_rate"])
    if "throttle_retry_after" in raw:
        after = raw["throttle_retry_after"]
        gateway.throttle_retry_after = None if after is None else float(after)
    return web.json_response(
        {
            "latency_ms": gateway.latency_ms,
            "throttle_every": gateway.throttle_every,
            "hidden_rate": gateway.hidden_rate,
            "throttle_retry_after": gateway.throttle_retry_after,
        }
    )


async def reset(request: web.Request) -> web.Response:
    gateway: Book = request.app["gateway"]
    gateway.clear()
    return web.json_response({"reset": True})


def http_fault(fault: Fault) -> web.Response:
    """The answer to a scripted HTTP-status fault, with ``Retry-After`` when scripted."""
    assert fault.http is not None
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else None
    return web.Response(status=fault.http, text="unavailable", headers=headers)


def add_control_routes(app: web.Application, book: Book) -> None:
    """The control endpoints, on a fake's app whose state is ``book`` (a fake with more
    state extends ``Book`` and its ``clear``)."""
    app["gateway"] = book
    app.router.add_get("/_fake/received", received)
    app.router.add_post("/_fake/faults", add_faults)
    app.router.add_post("/_fake/config", configure)
    app.router.add_post("/_fake/reset", reset)


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on http://{host}:{bound}", flush=True)
    await asyncio.Event().wait()


def run(
    description: str,
    make_app: Callable[[Book], web.Application],
    book: Book,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """The command line of a fake: ``--host``, ``--port`` (0: any free one),
    ``--latency-ms``, ``--faults`` (a JSON list), and the fake's own ``options`` (a book
    field -> ``add_argument`` keywords, as ``--field-name``)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="milliseconds before each answer"
    )
    parser.add_argument(
        "--faults",
        default="[]",
        help='a JSON list of faults, each lasting "seconds" or "requests": '
        '[{"code": "-118", "requests": 5}, {"http": 503, "seconds": 30}, '
        '{"hang": true, "requests": 1}]',
    )
    for name, keywords in (options or {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, **keywords)
    args = parser.parse_args()
    for name in options or {}:
        setattr(book, name, getattr(args, name))
    book.latency_ms = args.latency_ms
    book.faults = [Fault.parse(item) for item in json.loads(args.faults)]
    try:
        asyncio.run(_serve(make_app(book), args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)
