"""``/receipts/{provider}``: the webhook's hot path, in plain ASGI.

Measured (``benchmarks/receipts.py``, cProfile of the app driven in-process): Starlette's
routing, ``Request`` and ``Response`` took about a third of each receipt's time (route
matching, building query parameters that are empty, response objects), so this one route
skips them; ``/healthz`` and ``/metrics`` stay on Starlette. What it checks is unchanged:
method, size (declared and read), content type, UTF-8, the provider's proof, the receipt's
fields; then the receipt is committed with others arriving at the same time
(``GroupCommit``) before the 2xx.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Counter, Histogram

from ledger.receipts import Inbound, digest
from providers import InboundRequest, Provider, ProviderConfigError
from worker.logging import get_logger
from worker.web.auth_throttle import AuthThrottle

log = get_logger("loa.webhook")

PREFIX = "/receipts/"
#: Receipts are a few hundred bytes; anything much larger is not one.
MAX_BODY = 64 * 1024
FORM, JSON = "application/x-www-form-urlencoded", "application/json"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

RECEIPTS = Counter(
    "loa_webhook_receipts_total", "Receipt requests by provider and answer", ["provider", "answer"]
)
LATENCY = Histogram(
    "loa_webhook_seconds",
    "Time from a receipt's arrival to its answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Refused(Exception):
    """A request answered with a 4xx/5xx and a short reason, nothing stored
    (``retry_after``: seconds, sent as ``Retry-After``)."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status, self.retry_after = status, retry_after


def _query(raw: bytes) -> dict[str, str]:
    """The query's fields, as UTF-8 whether written raw or percent-encoded (the same
    receipt must not be read two ways by how it was written).

    Raises:
        Refused: 400, not UTF-8.
    """
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise Refused(400, "the query string is not UTF-8") from None


async def _body(headers: dict[str, str], receive: Receive) -> tuple[dict[str, str], bytes]:
    """The body's fields and its bytes as they came: a form's fields, or a JSON object's
    flattened to text (``{"message": {"msg_id": "x"}}`` -> ``message.msg_id``), so every
    provider's ``parse_receipt`` reads one shape and a signature can be checked over
    exactly what was sent.

    Raises:
        Refused: 413 too large, 415 neither form nor JSON, 400 not UTF-8 or not an object.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(413, "body too large")
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (FORM, JSON):
        raise Refused(415, f"expected {FORM} or {JSON}")
    body, more = bytearray(), True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away")
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_BODY:
            raise Refused(413, "body too large")
    try:
        text = body.decode("utf-8")
        if kind == FORM:
            return dict(parse_qsl(text, keep_blank_values=True, errors="strict")), bytes(body)
        document = json.loads(text)
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise Refused(400, "the body is not a JSON object")
    return flatten(document), bytes(body)


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A JSON object's values as text under dotted names; lists by index (``a.0``)."""
    fields: dict[str, str] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            fields.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            fields.update(flatten(dict(enumerate(value)), f"{name}."))
        elif value is None:
            fields[name] = ""
        elif isinstance(value, bool):
            fields[name] = "true" if value else "false"
        else:
            fields[name] = str(value)
    return fields


def _request(
    scope: Scope, headers: dict[str, str], form: dict[str, str], body: bytes = b""
) -> InboundRequest:
    raw_query = scope.get("query_string", b"")
    host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
    if raw_query:
        url += "?" + raw_query.decode("latin-1")
    return InboundRequest(
        url=url,
        query=_query(raw_query),
        form=form,
        headers=headers,
        client=(scope.get("client") or ("",))[0],
        body=body,
    )


class ReceiptRoute:
    """The ASGI app of ``/receipts/{provider}``.

    Parameters:
        provider: finds a provider instance by name (raises ``ProviderConfigError``).
        commit: stores one receipt, returning once it is committed.
        throttle: failed checks per client address (``worker.web.auth_throttle``).
    """

    def __init__(
        self,
        provider: Callable[[str], Provider],
        commit: Callable[[Inbound], Awaitable[None]],
        throttle: AuthThrottle | None = None,
    ) -> None:
        self.provider, self.commit = provider, commit
        self.throttle = throttle or AuthThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        name = scope["path"][len(PREFIX) :]
        try:
            await self._take(scope, receive, name)
            status, reason = 200, "OK"
            retry_after = None
        except Refused as refused:
            status, reason, retry_after = refused.status, str(refused), refused.retry_after
        body = reason.encode("utf-8")
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        if retry_after is not None:
            headers.append((b"retry-after", str(math.ceil(retry_after)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if status != 404:  # no label per made-up route name
            RECEIPTS.labels(name, str(status)).inc()
        LATENCY.observe(time.perf_counter() - started)

    async def _take(self, scope: Scope, receive: Receive, name: str) -> None:
        method = scope["method"]
        if method not in ("GET", "POST"):
            raise Refused(405, "GET or POST")
        try:
            provider = self.provider(name)
        except ProviderConfigError:
            raise Refused(404, "no such provider") from None
        client = (scope.get("client") or ("",))[0]
        door = f"{name}|{client}"  # failures at one provider's door close only that one
        wait = self.throttle.wait(door)
        if wait > 0:  # too many failed checks from there: not even looked at
            raise Refused(429, "too many failed attempts; wait", retry_after=wait)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        form, body = await _body(headers, receive) if method == "POST" else ({}, b"")
        request = _request(scope, headers, form, body)
        try:
            proven = provider.authenticate(request)
        except Exception as exc:  # a check that cannot even run proves nothing
            log.warning("webhook.check_failed", provider=name, error=type(exc).__name__)
            proven = False
        if not proven:
            slowed = self.throttle.failed(door)
            why = "not proven: its signature or token does not match this instance's secret"
            log.warning("webhook.refused", provider=name, client=client, why=why)
            if slowed:  # once: later ones are refused unchecked
                log.warning("webhook.throttled", client=client, every=self.throttle.every)
            raise Refused(403, "forbidden")
        fields = request.fields
        try:
            parsed = provider.parse_receipt(fields)
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        inbound = Inbound(
            name,
            parsed.provider_message_id,
            parsed.status,
            parsed.raw_status,
            parsed.code,
            parsed.network,
            digest(name, fields),
            parsed.message_id,
        )
        try:
            inbound.check()  # refused alone, before it can fail a group commit
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        try:
            await self.commit(inbound)
        except Exception as exc:
            log.warning("webhook.ledger_unavailable", provider=name, error=type(exc).__name__)
            raise Refused(503, "ledger unavailable, try again") from None
        if parsed.status is None and provider.unmapped_answer >= 400:  # kept, flagged
            raise Refused(provider.unmapped_answer, f"unknown status {parsed.raw_status!r}")
