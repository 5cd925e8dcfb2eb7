"""A local eSMS.vn gateway that speaks eSMS's real JSON API, for tests and benchmarks.

It answers ``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/`` the way eSMS
does (``{"CodeResult": "100", "SMSID": …}``; ``124`` for a ``RequestId`` it already took)
after a configurable latency, and records the arrival time of every request, so a test
can check what reached "the carrier" and a benchmark can count messages per second.
``POST /MainService.svc/json/GetBalance_json`` answers the account's balance as eSMS does
(``{"Balance": 2540300, "CodeResponse": "100", "UserID": 9999}``, or ``CodeResponse``
``101`` with ``"Balance": 0`` for other credentials; ``--balance`` sets it); a balance
check is not a send, so it is not in what the fake received. Scripted HTTP faults apply
to it as to sends.

Faults are scripted, at start-up or live over HTTP, each for some seconds or for some
requests, first match wins::

    {"http": 503, "seconds": 30}                     # the gateway is down for 30 s
    {"http": 429, "retry_after": 2, "requests": 50}  # throttled, with Retry-After
    {"code": "101", "seconds": 3600}                 # credentials refused
    {"hang": true, "requests": 5}                    # takes the message, never answers

Control endpoints (not eSMS's) and start-up: ``providers.fakes.common``.

Run it: ``python -m providers.fakes.esms --port 8765 --latency-ms 250``; it prints
``listening on http://127.0.0.1:PORT`` once it accepts connections. With
``--brandnames A,B`` the account has only those brandnames registered: any other is
answered 104, as eSMS does.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from providers.fakes.common import Book, add_control_routes, http_fault, run

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
BALANCE_PATH = "/MainService.svc/json/GetBalance_json"
REQUIRED = ("ApiKey", "SecretKey", "Phone", "Content", "Brandname", "SmsType")


@dataclass
class Gateway(Book):
    """The fake's state: credentials it accepts and what it took, by ``RequestId``."""

    api_key: str = "fake-key"
    secret_key: str = "fake-secret"
    accepted: dict[str, str] = field(default_factory=dict)  # RequestId -> SMSID
    #: The account's registered brandnames (``--brandnames``); empty: any is taken.
    brandnames: frozenset[str] = frozenset()
    #: The account's balance in đồng (``--balance``), and its id, for ``GetBalance_json``.
    balance: float = 2_540_300
    user_id: int = 9999

    def clear(self) -> None:
        super().clear()
        self.accepted.clear()


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
        return http_fault(fault)
    if missing:
        answer("99")
        return _reply("99", ErrorMessage=f"missing {', '.join(missing)}")
    if body["ApiKey"] != gateway.api_key or body["SecretKey"] != gateway.secret_key:
        answer("101")
        return _reply("101", ErrorMessage="Authorize Failed")
    if gateway.brandnames and body["Brandname"] not in gateway.brandnames:
        answer("104")
        return _reply("104", ErrorMessage="Brandname not registered")
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


async def balance(request: web.Request) -> web.StreamResponse:
    """``GetBalance_json``: the balance for our credentials, ``101`` for any others
    (eSMS answers both 200, the code in ``CodeResponse``, not ``CodeResult``)."""
    gateway: Gateway = request.app["gateway"]
    try:
        body = await request.json(loads=json.loads)
        given = (body.get("ApiKey"), body.get("SecretKey"))
    except (ValueError, AttributeError):
        given = (None, None)
    fault = gateway.fault()
    if fault is not None and fault.http is not None:
        return http_fault(fault)
    if given != (gateway.api_key, gateway.secret_key):
        return web.json_response(
            {"Balance": 0, "CodeResponse": "101", "ErrorMessage": "Authorize Failed"}
        )
    answer = {"Balance": gateway.balance, "CodeResponse": "100", "UserID": gateway.user_id}
    return web.json_response(answer)


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    add_control_routes(app, gateway)
    app.router.add_post(SEND_PATH, send)
    # eSMS's documentation writes it without the final slash, its code samples with one.
    app.router.add_post(BALANCE_PATH, balance)
    app.router.add_post(BALANCE_PATH + "/", balance)
    return app


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def main() -> None:
    brandnames = {"type": _names, "default": frozenset(), "help": "registered, comma-separated"}
    balance = {"type": float, "default": Gateway.balance, "help": "the account's balance, đồng"}
    key = {"default": Gateway.api_key, "help": "the ApiKey it takes"}
    secret = {"default": Gateway.secret_key, "help": "the SecretKey it takes"}
    options = {"brandnames": brandnames, "balance": balance, "api_key": key, "secret_key": secret}
    run(__doc__.split("\n")[0], make_app, Gateway(), options)


if __name__ == "__main__":
    main()
