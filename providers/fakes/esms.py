"""A local eSMS.vn gateway that speaks eSMS's real JSON API, for tests and benchmarks.

It answers ``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/`` the way eSMS
does (``{"CodeResult": "100", "SMSID": …}``; ``124`` for a ``RequestId`` it already took)
after a configurable latency, and records the arrival time of every request, so a test
can check what reached "the carrier" and a benchmark can count messages per second.

Faults are scripted, at start-up or live over HTTP, each for some seconds or for some
requests, first match wins::

    {"http": 503, "seconds": 30}                     # the gateway is down for 30 s
    {"http": 429, "retry_after": 2, "requests": 50}  # throttled, with Retry-After
    {"code": "101", "seconds": 3600}                 # credentials refused
    {"hang": true, "requests": 5}                    # takes the message, never answers

Control endpoints (not eSMS's): ``GET /_fake/received`` (every request, in order),
``POST /_fake/faults`` (add faults), ``POST /_fake/reset``.

Run it: ``python -m providers.fakes.esms --port 8765 --latency-ms 250``; it prints
``listening on http://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
REQUIRED = ("ApiKey", "SecretKey", "Phone", "Content", "Brandname", "SmsType")


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
class Gateway:
    """The fake's state: its latency, its faults and what it received."""

    latency_ms: float = 0.0
    api_key: str = "fake-key"
    secret_key: str = "fake-secret"
    faults: list[Fault] = field(default_factory=list)
    #: One entry per request: wall-clock arrival, phone, RequestId, the answer given.
    received: list[tuple[float, str, str, str]] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # RequestId -> SMSID

    def fault(self) -> Fault | None:
        self.faults = [f for f in self.faults if f.live()]
        for fault in self.faults:
            if fault.left is not None:
                fault.left -= 1
            return fault
        return None


def _reply(code: str, **extra: str) -> web.Response:
    return web.json_response({"CodeResult": code, **extra})


async def send(request: web.Request) -> web.StreamResponse:
    gateway: Gateway = request.app["gateway"]
    arrived = time.time()
    try:
        body = await request.json(loads=json.loads)
        missing = [name for name in REQUIRED if not body.get(name)]
    except (ValueError, AttributeError):
        body, missing = {}, ["a JSON object"]
    phone, request_id = str(body.get("Phone", "")), str(body.get("RequestId", ""))
    if gateway.latency_ms:
        await asyncio.sleep(gateway.latency_ms / 1000)

    def answer(outcome: str) -> None:
        gateway.received.append((arrived, phone, request_id, outcome))

    fault = gateway.fault()
    if fault is not None and fault.http is not None:
        answer(f"http_{fault.http}")
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else None
        return web.Response(status=fault.http, text="unavailable", headers=headers)
    if missing:
        answer("99")
        return _reply("99", ErrorMessage=f"missing {', '.join(missing)}")
    if body["ApiKey"] != gateway.api_key or body["SecretKey"] != gateway.secret_key:
        answer("101")
        return _reply("101", ErrorMessage="Authorize Failed")
    if fault is not None and fault.code is not None:
        answer(fault.code)
        return _reply(fault.code, ErrorMessage="scripted")
    if request_id and request_id in gateway.accepted:
        answer("124")
        return _reply("124", ErrorMessage="Duplicate RequestId")
    sms_id = f"fake-{len(gateway.received) + 1}"
    if request_id:
        gateway.accepted[request_id] = sms_id
    if fault is not None and fault.hang:
        answer("hang")
        await asyncio.sleep(3600)  # taken, but the caller times out waiting for the answer
    answer("100")
    return _reply("100", SMSID=sms_id)


async def received(request: web.Request) -> web.Response:
    gateway: Gateway = request.app["gateway"]
    since = int(request.query.get("since", "0"))
    rows = gateway.received[since:]
    return web.json_response(
        {"count": len(gateway.received), "received": [list(row) for row in rows]}
    )


async def add_faults(request: web.Request) -> web.Response:
    gateway: Gateway = request.app["gateway"]
    try:
        raw = await request.json()
        new = [Fault.parse(item) for item in (raw if isinstance(raw, list) else [raw])]
    except (ValueError, TypeError, AttributeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    gateway.faults.extend(new)
    return web.json_response({"faults": len(gateway.faults)})


async def configure(request: web.Request) -> web.Response:
    gateway: Gateway = request.app["gateway"]
    raw = await request.json()
    if "latency_ms" in raw:
        gateway.latency_ms = float(raw["latency_ms"])
    return web.json_response({"latency_ms": gateway.latency_ms})


async def reset(request: web.Request) -> web.Response:
    gateway: Gateway = request.app["gateway"]
    gateway.faults.clear()
    gateway.received.clear()
    gateway.accepted.clear()
    return web.json_response({"reset": True})


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    app["gateway"] = gateway
    app.router.add_post(SEND_PATH, send)
    app.router.add_get("/_fake/received", received)
    app.router.add_post("/_fake/faults", add_faults)
    app.router.add_post("/_fake/config", configure)
    app.router.add_post("/_fake/reset", reset)
    return app


async def _serve(gateway: Gateway, host: str, port: int) -> None:
    runner = web.AppRunner(make_app(gateway), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on http://{host}:{bound}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--faults", default="[]", help="a JSON list of faults")
    args = parser.parse_args(argv)
    gateway = Gateway(latency_ms=args.latency_ms)
    gateway.faults = [Fault.parse(item) for item in json.loads(args.faults)]
    try:
        asyncio.run(_serve(gateway, args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
