"""Property-based fuzzing of the webhook's two open doors, ``/receipts/{provider}`` and
``POST /arrivals``, on both ledgers (issue 17): whatever arrives, the answer is never a
5xx (the ledger is up, so nothing is Loa's to fail), and a refused request stores nothing.

The app is driven as uvicorn drives it (one ASGI call per request, the body in pieces),
in this process, so that hundreds of requests take seconds. Requests mix well-formed
parts (the right provider names, field names, tokens, signatures, content types) with
hostile ones (NUL bytes, over-long values, bad UTF-8, deep nesting, absurd times), so
that the interesting paths past the authentication are reached too.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ledger.schema import arrival_events, messages, receipts
from tests.campaigns.test_arrivals import RULES
from tests.worker.test_arrival_route import KEY
from tests.worker.test_webhook import AUTH, PROVIDERS, PUBLIC, TOKEN
from worker.runtime import Runtime
from worker.settings import Settings
from worker.web.webhook import make_app

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

nasty = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=200),
    st.sampled_from(["", "\x00", "x\x00y", "9" * 70, "DELIVRD", "5", "delivered", "4"]),
)
FIELDS = [
    "id", "stat", "err", "token", "RequestId", "SendStatus", "SMSID", "telcoid",
    "MessageSid", "MessageStatus", "ErrorCode",
]  # fmt: skip
fields = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), nasty, max_size=6)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


async def _call(app, method: str, path: str, query: bytes, headers, body: bytes, client: str):
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (client, 40000),
        "server": ("127.0.0.1", 8080),
    }
    pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    incoming = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def serve_one(runtime: Runtime, *request: Any) -> int:
    return asyncio.run(_call(make_app(runtime), *request))


def runtime_for(engine, tmp_path) -> Runtime:
    url = sa.engine.make_url(engine.url).render_as_string(hide_password=False)
    loaded = Settings(
        database_url=url,
        var_dir=tmp_path,
        providers=PROVIDERS,
        arrivals_rules=RULES,
        arrivals_api_key=KEY,
    )
    return Runtime(loaded, engine=engine)


#: A receipt each route takes, the start of most requests: one to three of its values are
#: then made hostile, so that requests get past each provider's check and reach the ledger.
VALID = {
    "sandbox": {"id": "S1", "stat": "DELIVRD"},
    "gateway": {"RequestId": "loa-1", "SendStatus": "5", "SMSID": "9", "token": TOKEN},
    "intl": {"MessageSid": "SM1", "MessageStatus": "delivered"},
}


@st.composite
def receipt_requests(draw):
    provider = draw(st.sampled_from([*VALID, *VALID, *VALID, "nowhere", "", "a/b"]))
    values = dict(VALID.get(provider, {}))
    for name in draw(st.lists(st.sampled_from([*values, *FIELDS]), min_size=1, max_size=3)):
        values[name] = draw(nasty)
    if draw(st.integers(0, 4)) == 0:
        values.update(draw(fields))
    as_form = provider == "intl" or draw(st.integers(0, 4)) == 0
    query, form = ({}, values) if as_form else (values, {})
    if provider == "intl" and draw(st.booleans()):
        query = draw(fields)  # a query beside the form: signed, or not
    method = "POST" if as_form else "GET"
    if draw(st.integers(0, 19)) == 0:
        method = "PUT"
    kind = "application/x-www-form-urlencoded"
    if draw(st.integers(0, 9)) == 0:
        kind = draw(st.sampled_from(["application/json", "text/plain", ""]))
    body = urllib.parse.urlencode(form).encode() if method != "GET" else b""
    if draw(st.integers(0, 19)) == 0:
        body = draw(st.binary(max_size=300))
    headers = [("content-type", kind)] if kind else []
    if provider == "intl":
        url = PUBLIC + ("?" + urllib.parse.urlencode(query) if query else "")
        signature = RequestValidator(AUTH).compute_signature(url, form)
        headers.append(("x-twilio-signature", draw(st.sampled_from([signature] * 4 + ["x"]))))
    # A Host no URL parser takes once made the signature check a 500.
    headers.append(("host", draw(st.sampled_from(["loa.example.vn"] * 4 + HOSTS))))
    address = f"127.0.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}"
    encoded = urllib.parse.urlencode(query).encode()
    if draw(st.integers(0, 9)) == 0:
        encoded += b"&raw=" + draw(st.binary(min_size=1, max_size=8))  # bytes, not %XX
    return method, f"/receipts/{provider}", encoded, headers, body, address


HOSTS = ["[", "a]b", "x:abc", "x:99999", "x:1:2", ""]


def test_no_receipt_request_gets_a_5xx_and_a_refused_one_stores_nothing(engine, tmp_path):
    runtime = runtime_for(engine, tmp_path)

    @FUZZ
    @given(receipt_requests())
    def check(request):
        before = count(engine, receipts)
        status = serve_one(runtime, *request)
        assert status < 500, request
        if status not in (200, 422):  # 422: stored, flagged (a status no table knows)
            assert count(engine, receipts) == before, (status, request)

    try:
        check()
    finally:
        runtime.close()


times = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "1970-01-01T00:00:00Z",
            "2026-13-45T99:00",
            "1e30",
            "-1",
            "NaN",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
)
#: JSON can carry what a query string cannot: a lone surrogate.
nasty_json = st.one_of(nasty, st.sampled_from(["e4\ud800", "\udfff", "x\x00"]), st.integers())
arbitrary_event = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.one_of(st.text(max_size=80), nasty_json),
        "phone": st.one_of(st.sampled_from(["+821020000001", "0912345678"]), nasty_json),
        "arrived_at": times,
        "area": st.one_of(st.sampled_from(["589", "582"]), nasty_json),
        "language": st.one_of(st.sampled_from(["ko", "en"]), nasty_json),
        "home": st.one_of(st.booleans(), nasty_json),
        "roaming_country": nasty_json,
    },
)


@st.composite
def near_valid_event(draw):
    """A good event (a fresh id, a real number, now) with one or two fields made hostile:
    these reach the ledger, where a single bad one once failed the whole batch."""
    serial = draw(st.integers(0, 10**9))
    event = {
        "event_id": f"fz-{serial}",
        "phone": f"+8210{serial % 10**8:08d}",
        "arrived_at": datetime.now(UTC).isoformat(),
        "area": "589",
    }
    for name in draw(
        st.lists(st.sampled_from([*event, "language", "home", "roaming_country"]), max_size=2)
    ):
        event[name] = draw(nasty_json if name != "arrived_at" else times)
    return event


event = st.one_of(near_valid_event(), near_valid_event(), arbitrary_event)
documents = st.one_of(
    st.fixed_dictionaries({"events": st.lists(st.one_of(event, st.integers(), nasty), max_size=8)}),
    st.lists(event, max_size=5),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), st.lists, max_leaves=20),
)


@st.composite
def arrival_requests(draw):
    document = draw(documents)
    body = json.dumps(document, allow_nan=True).encode()
    shape = draw(st.integers(0, 9))
    if shape == 0:
        body = draw(st.binary(max_size=200))
    elif shape in (1, 2):
        depth = draw(st.integers(500, 100_000))  # past Python's recursion limit, mostly
        body = b'{"events": ' + b"[" * depth + b"]" * depth + b"}"
    key = draw(st.sampled_from([KEY] * 8 + ["guess", ""]))
    kind = draw(st.sampled_from(["application/json"] * 9 + ["text/plain"]))
    headers = [("content-type", kind)]
    if key:
        headers.append(("x-api-key", key))
    address = f"10.{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.7"
    return "POST", "/arrivals", b"", headers, body, address


def test_no_arrivals_request_gets_a_5xx_and_a_refused_one_stores_nothing(engine, tmp_path):
    runtime = runtime_for(engine, tmp_path)

    @FUZZ
    @given(arrival_requests())
    def check(request):
        before = count(engine, arrival_events), count(engine, messages)
        status = serve_one(runtime, *request)
        assert status < 500, request
        if status != 200:
            assert (count(engine, arrival_events), count(engine, messages)) == before, status

    try:
        check()
    finally:
        runtime.close()
