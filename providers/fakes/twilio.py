"""A local Twilio Messages API (2010-04-01) for the failures Prism cannot script.

Prism (with Twilio's description, ``tests/contracts``) judges whether our requests follow Twilio's own API
description, and always answers 201. This fake answers like Twilio when things go wrong:
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded, HTTP basic auth)
gets a Message resource (``sid`` ``SM…``, ``status`` ``queued``), or Twilio's error body
(``{"code": 21211, "message": …, "more_info": …, "status": 400}``) when a fault says so;
``GET /2010-04-01/Accounts/{AccountSid}.json`` answers the account (or 20003) for checks,
``active`` unless ``--account-status`` (``suspended``, ``closed``) says otherwise.

Faults (``providers.fakes.common``)::

    {"code": 21610, "requests": 1}              # Twilio error 21610, with its HTTP status
    {"http": 503, "seconds": 30}                # down
    {"http": 429, "retry_after": 2, "requests": 1}
    {"hang": true, "requests": 1}               # takes it, never answers

Run it: ``python -m providers.fakes.twilio --port 0``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

from providers.fakes.common import Book, add_control_routes, http_fault, run

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")

#: The HTTP status Twilio answers each scripted error code with.
STATUS_OF_CODE = {20003: 401, 20429: 429, 21211: 400, 21408: 400, 21610: 400, 21611: 400}


@dataclass
class Gateway(Book):
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-twilio-token-7f3a9c"
    sids: list[str] = field(default_factory=list)
    account_status: str = "active"


def _error(code: int, status: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


def _authorised(request: web.Request, gateway: Gateway) -> bool:
    expected = f"{gateway.account_sid}:{gateway.auth_token}".encode()
    header = request.headers.get("Authorization", "")
    return header == "Basic " + base64.b64encode(expected).decode()


async def messages(request: web.Request) -> web.StreamResponse:
    gateway: Gateway = request.app["gateway"]
    arrived = time.time()
    form = await request.post()
    to, callback = str(form.get("To", "")), str(form.get("StatusCallback", ""))
    if gateway.latency_ms:
        await asyncio.sleep(gateway.latency_ms / 1000)

    def answer(outcome: str) -> None:
        gateway.received.append((arrived, to, callback, outcome))

    fault = gateway.fault()
    if fault is not None and fault.http is not None:
        answer(f"http_{fault.http}")
        return http_fault(fault)
    match = MESSAGES_PATH.match(request.path)
    if not _authorised(request, gateway) or match is None or match[1] != gateway.account_sid:
        answer("20003")
        return _error(20003, 401, "Authenticate")
    if not to or not (form.get("Body") and (form.get("From") or form.get("MessagingServiceSid"))):
        answer("21604")
        return _error(21604, 400, "A 'To', 'Body' and 'From' or service are required")
    if fault is not None and fault.code is not None:
        code = int(fault.code)
        answer(str(code))
        return _error(code, STATUS_OF_CODE.get(code, 400), "scripted")
    sid = f"SM{len(gateway.received) + 1:032x}"
    if fault is not None and fault.hang:
        answer("hang")
        await asyncio.sleep(3600)
    answer("queued")
    gateway.sids.append(sid)
    return web.json_response(
        {"sid": sid, "status": "queued", "to": to, "num_segments": "1"}, status=201
    )


async def account(request: web.Request) -> web.Response:
    """``GET /2010-04-01/Accounts/{AccountSid}.json``: the account, to our own owner."""
    gateway: Gateway = request.app["gateway"]
    if not _authorised(request, gateway) or request.match_info["account"] != gateway.account_sid:
        return _error(20003, 401, "Authenticate")
    answer = {"sid": gateway.account_sid, "status": gateway.account_status, "type": "Full"}
    return web.json_response(answer)


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    add_control_routes(app, gateway)
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", messages)
    app.router.add_get("/2010-04-01/Accounts/{account}.json", account)
    return app


def main() -> None:
    status = {"default": "active", "help": "the account's status: active, suspended, closed"}
    run(__doc__.split("\n")[0], make_app, Gateway(), {"account_status": status})


if __name__ == "__main__":
    main()
