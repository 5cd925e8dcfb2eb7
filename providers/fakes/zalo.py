"""A local Zalo Notification Service that speaks ZNS's real API, for tests and benchmarks.

- ``POST /message/template`` (header ``access_token``; JSON ``phone``, ``template_id``,
  ``template_data``, ``tracking_id``) answers as ZNS does: ``{"error": 0, "message":
  "Success", "data": {"msg_id", "sent_time", "quota": {"dailyQuota", "remainingQuota"}}}``,
  or a negative ``error``: -124 for an access token it does not know (or one expired:
  ``--token-lifetime``), -109 for a template it does not have (``--templates``), -111 for
  empty data, -112 for data missing a parameter, -118 for a number with no Zalo account
  (``--no-zalo-share``: that share of numbers, the same ones every run, by a hash of the
  number), -144 once the daily quota (``--daily-quota``) is used up.
- ``POST /v4/oa/access_token`` (header ``secret_key``; form ``app_id``, ``grant_type``,
  ``refresh_token``) issues a new pair and forgets the old refresh token (single-use, as
  Zalo's), or answers ``{"error": -14014, …}`` to one it does not know.
- ``GET /message/quota``: today's quota.
- Delivery events: with ``--events-url``, each accepted message is reported
  ``user_received_message`` after ``--delivery-delay`` seconds (``--late-share`` of them
  after ``--late-delay``, ``--lost-share`` never), POSTed as JSON and signed as Zalo signs
  them (``X-ZEvent-Signature``, with ``--app-id`` and ``--oa-secret``).

Control endpoints besides the common ones (``providers.fakes.common``): ``POST
/_fake/expire`` (the current access token dies now), ``GET /_fake/tokens`` (refreshes made,
the pair now), ``POST /_fake/deliver`` (``{"msg_ids": [...]}``, or ``{}`` for every message
not yet reported: sent now, whatever the delays; answers what was posted and each status).

Run it: ``python -m providers.fakes.zalo --port 8766 --events-url http://127.0.0.1:8080/receipts/zalo``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from providers.fakes.common import Book, add_control_routes, http_fault, run

SEND_PATH, QUOTA_PATH, REFRESH_PATH = "/message/template", "/message/quota", "/v4/oa/access_token"


def _templates(text: str) -> dict[str, tuple[str, ...]]:
    """``"231432:ten,ma;231433:ten"`` -> each template's parameters."""
    found: dict[str, tuple[str, ...]] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, params = item.partition(":")
        found[name.strip()] = tuple(p.strip() for p in params.split(",") if p.strip())
    return found


@dataclass
class Zns(Book):
    """The fake's state: the OA's app, its tokens and templates, what it took and what it
    has still to report delivered."""

    app_id: str = "1234567890"
    secret_key: str = "fake-zalo-app-secret"
    oa_secret: str = "fake-oa-secret-5d41402abc4b2a76"
    access_token: str = "fake-access-0"
    refresh_token: str = "fake-refresh-0"
    token_lifetime: float = 90_000.0
    templates: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"231432": ("ten", "ma")})
    no_zalo_share: float = 0.0
    daily_quota: int = 1_000_000
    events_url: str | None = None
    delivery_delay: float = 0.2
    late_share: float = 0.0
    late_delay: float = 60.0
    lost_share: float = 0.0
    issued_at: float = field(default_factory=time.monotonic)
    refreshes: int = 0
    sent_today: int = 0
    #: msg_id -> (tracking_id, phone), for those not yet reported delivered.
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)
    delivered: int = 0

    def clear(self) -> None:
        super().clear()
        self.pending.clear()
        self.sent_today = self.delivered = 0

    def token_alive(self, token: str) -> bool:
        return token == self.access_token and (
            time.monotonic() - self.issued_at < self.token_lifetime
        )


def _share(phone: str, salt: str) -> float:
    """Where a number falls in [0, 1), the same every run (which numbers have no Zalo …)."""
    digest = hashlib.sha256(f"{salt}:{phone}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _reply(error: int, message: str, **data: Any) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if data:
        body["data"] = data
    return web.json_response(body)


async def send(request: web.Request) -> web.StreamResponse:
    zns: Zns = request.app["gateway"]
    arrived = time.time()
    try:
        body = await request.json(loads=json.loads)
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        body = {}
    phone, tracking = str(body.get("phone", "")), str(body.get("tracking_id", ""))
    if zns.latency_ms:
        await asyncio.sleep(zns.latency_ms / 1000)

    def answer(outcome: str) -> None:
        zns.received.append((arrived, phone, tracking, outcome))

    fault = zns.fault()
    if fault is not None and fault.http is not None:
        answer(f"http_{fault.http}")
        return http_fault(fault)
    if not zns.token_alive(request.headers.get("access_token", "")):
        answer("-124")
        return _reply(-124, "Access token is invalid")
    if fault is not None and fault.code is not None:
        answer(fault.code)
        return _reply(int(fault.code), "scripted")
    template = zns.templates.get(str(body.get("template_id", "")))
    data = body.get("template_data")
    if template is None:
        answer("-109")
        return _reply(-109, "Template ID invalid")
    if not data or not isinstance(data, dict):
        answer("-111")
        return _reply(-111, "Template data empty")
    if any(not str(data.get(param, "")) for param in template):
        answer("-112")
        return _reply(-112, "Template data invalid")
    if not phone.isdigit() or not phone.startswith("84"):
        answer("-108")
        return _reply(-108, "Phone number invalid")
    if _share(phone, "zalo") < zns.no_zalo_share:
        answer("-118")
        return _reply(-118, "Zalo account not existed")
    if zns.sent_today >= zns.daily_quota:
        answer("-144")
        return _reply(-144, "OA has exceeded the daily quota")
    zns.sent_today += 1
    msg_id = hashlib.sha256(f"{tracking}:{len(zns.received)}".encode()).hexdigest()[:32]
    if fault is not None and fault.hang:
        answer("hang")
        await asyncio.sleep(3600)
    answer("0")
    _report_later(request.app, zns, msg_id, tracking, phone)
    quota = {"dailyQuota": zns.daily_quota, "remainingQuota": zns.daily_quota - zns.sent_today}
    return _reply(0, "Success", msg_id=msg_id, sent_time=str(int(arrived * 1000)), quota=quota)


def _report_later(app: web.Application, zns: Zns, msg_id: str, tracking: str, phone: str) -> None:
    zns.pending[msg_id] = (tracking, phone)
    if zns.events_url is None:
        return
    place = _share(phone, "delivery")
    if place < zns.lost_share:
        return
    delay = zns.late_delay if place < zns.lost_share + zns.late_share else zns.delivery_delay
    task = asyncio.get_running_loop().create_task(_deliver_after(app, zns, msg_id, delay))
    app["tasks"].add(task)
    task.add_done_callback(app["tasks"].discard)


async def _deliver_after(app: web.Application, zns: Zns, msg_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    if msg_id in zns.pending:
        await _post_event(app, zns, msg_id)


def event_body(zns: Zns, msg_id: str, tracking: str, at_ms: int) -> bytes:
    """A ``user_received_message`` event as ZNS posts it."""
    event = {
        "app_id": zns.app_id,
        "event_name": "user_received_message",
        "timestamp": str(at_ms),
        "sender": {"id": "oa-fake"},
        "recipient": {"id": f"user-{tracking}"},
        "message": {"msg_id": msg_id, "tracking_id": tracking, "delivery_time": str(at_ms)},
    }
    return json.dumps(event).encode()


def signature(zns: Zns, body: bytes, timestamp: str) -> str:
    """``X-ZEvent-Signature``: ``mac=`` and the SHA-256 of app id, body, timestamp and
    the OA's secret key."""
    raw = zns.app_id.encode() + body + timestamp.encode() + zns.oa_secret.encode()
    return "mac=" + hashlib.sha256(raw).hexdigest()


async def _post_event(app: web.Application, zns: Zns, msg_id: str) -> int:
    """Post one delivery event; returns the webhook's status (0: it could not be reached).
    A message stays pending until the webhook answers 2xx, as Zalo retries."""
    tracking, _ = zns.pending[msg_id]
    at_ms = int(time.time() * 1000)
    body = event_body(zns, msg_id, tracking, at_ms)
    headers = {
        "Content-Type": "application/json",
        "X-ZEvent-Signature": signature(zns, body, str(at_ms)),
    }
    assert zns.events_url is not None
    try:
        async with app["client"].post(zns.events_url, data=body, headers=headers) as answer:
            status = answer.status
    except (aiohttp.ClientError, TimeoutError):
        return 0
    if 200 <= status < 300 and zns.pending.pop(msg_id, None) is not None:
        zns.delivered += 1
    return status


async def deliver(request: web.Request) -> web.Response:
    """Report delivered now: the messages named, or every one not yet reported."""
    zns: Zns = request.app["gateway"]
    raw = await request.json() if request.can_read_body else {}
    wanted = raw.get("msg_ids") or list(zns.pending)
    if zns.events_url is None:
        return web.json_response({"error": "no --events-url"}, status=400)
    statuses = {}
    for msg_id in wanted:
        if msg_id in zns.pending:
            statuses[msg_id] = await _post_event(request.app, zns, msg_id)
    return web.json_response({"posted": len(statuses), "statuses": statuses})


async def refresh(request: web.Request) -> web.Response:
    zns: Zns = request.app["gateway"]
    form = await request.post()
    fault = zns.fault()
    if fault is not None and fault.http is not None:
        return http_fault(fault)
    if request.headers.get("secret_key") != zns.secret_key or form.get("app_id") != zns.app_id:
        return web.json_response({"error": -14002, "message": "Invalid app or secret key"})
    if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != zns.refresh_token:
        return web.json_response({"error": -14014, "message": "Invalid refresh token"})
    zns.refreshes += 1
    zns.access_token = f"fake-access-{zns.refreshes}"
    zns.refresh_token = f"fake-refresh-{zns.refreshes}"
    zns.issued_at = time.monotonic()
    pair = {"access_token": zns.access_token, "refresh_token": zns.refresh_token}
    return web.json_response({**pair, "expires_in": str(int(zns.token_lifetime))})


async def quota(request: web.Request) -> web.Response:
    zns: Zns = request.app["gateway"]
    if not zns.token_alive(request.headers.get("access_token", "")):
        return _reply(-124, "Access token is invalid")
    left = zns.daily_quota - zns.sent_today
    return _reply(0, "Success", dailyQuota=zns.daily_quota, remainingQuota=left)


async def expire(request: web.Request) -> web.Response:
    zns: Zns = request.app["gateway"]
    zns.issued_at = time.monotonic() - zns.token_lifetime - 1
    return web.json_response({"expired": True})


async def tokens(request: web.Request) -> web.Response:
    zns: Zns = request.app["gateway"]
    pair = {"access_token": zns.access_token, "refresh_token": zns.refresh_token}
    counts = {"refreshes": zns.refreshes, "pending": len(zns.pending)}
    return web.json_response({**pair, **counts, "delivered": zns.delivered})


def make_app(zns: Zns) -> web.Application:
    app = web.Application()
    add_control_routes(app, zns)
    app["tasks"] = set()

    async def client(app: web.Application):
        app["client"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        yield
        await app["client"].close()

    app.cleanup_ctx.append(client)
    app.router.add_post(SEND_PATH, send)
    app.router.add_get(QUOTA_PATH, quota)
    app.router.add_post(REFRESH_PATH, refresh)
    app.router.add_post("/_fake/expire", expire)
    app.router.add_get("/_fake/tokens", tokens)
    app.router.add_post("/_fake/deliver", deliver)
    return app


def main() -> None:
    options: dict[str, dict[str, Any]] = {
        "app_id": {"default": Zns.app_id, "help": "the OA app's id"},
        "secret_key": {"default": Zns.secret_key, "help": "the app's secret key"},
        "oa_secret": {"default": Zns.oa_secret, "help": "signs the delivery events"},
        "access_token": {"default": Zns.access_token, "help": "the first access token"},
        "refresh_token": {"default": Zns.refresh_token, "help": "the first refresh token"},
        "token_lifetime": {"type": float, "default": Zns.token_lifetime, "help": "seconds"},
        "templates": {
            "type": _templates,
            "default": {"231432": ("ten", "ma")},
            "help": "ID:param,param;ID:… (default 231432:ten,ma)",
        },
        "no_zalo_share": {"type": float, "default": 0.0, "help": "numbers without Zalo, 0-1"},
        "daily_quota": {"type": int, "default": Zns.daily_quota, "help": "sends a day"},
        "events_url": {"default": None, "help": "where delivery events are posted"},
        "delivery_delay": {"type": float, "default": Zns.delivery_delay, "help": "seconds"},
        "late_share": {"type": float, "default": 0.0, "help": "delivered after --late-delay"},
        "late_delay": {"type": float, "default": Zns.late_delay, "help": "seconds"},
        "lost_share": {"type": float, "default": 0.0, "help": "never reported delivered"},
    }
    run(__doc__.split("\n")[0], make_app, Zns(), options)


if __name__ == "__main__":
    main()
