"""Zalo ZNS, against a local server speaking ZNS's API (``providers.fakes.zalo``): every
code's classification, the single-use refresh token renewed once for many sends, and the
delivery events' signature."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

import providers
from campaigns.status import Status
from providers import ErrorKind, SendError, Template
from providers.fakes.zalo import Zns, event_body, signature
from tests.fake_gateway import fake_gateway
from tests.providers.harness import (
    ProofCase,
    ReceiptCase,
    SendCase,
    check_proof,
    check_receipt,
    check_send,
    inbound,
    message,
    no_network,  # noqa: F401 - fixture
)

SECRETS = ("secret_key", "refresh_token", "access_token", "oa_secret_key")
FAKE = Zns()  # the fake's defaults: its app, secrets and first pair
TEMPLATE = Template("231432", {"ten": "Lan", "ma": "BZ-7"})


@pytest.fixture(scope="module")
def gateway():
    with fake_gateway("providers.fakes.zalo") as running:
        yield running


def settings(gateway=None, **overrides):
    base = {
        "type": "zalo_zns",
        "app_id": FAKE.app_id,
        "secret_key": FAKE.secret_key,
        "refresh_token": FAKE.refresh_token,
        "access_token": FAKE.access_token,
        "oa_secret_key": FAKE.oa_secret,
        "read_timeout": 1.0,
    }
    if gateway is not None:
        base["base_url"] = base["oauth_url"] = gateway.url
    return {**base, **overrides}


def fault(code: str) -> tuple[dict[str, object], ...]:
    return ({"code": code, "requests": 1},)


ok = settings()
SEND_CASES = [
    SendCase("accepted", ok, None),
    # The "cannot reach this person on Zalo" kind: what sends them an SMS instead.
    SendCase("no Zalo account", ok, ErrorKind.UNREACHABLE, "-118", fault("-118")),
    SendCase("phone invalid for Zalo", ok, ErrorKind.UNREACHABLE, "-108", fault("-108")),
    SendCase("inactive or refuses ZNS", ok, ErrorKind.UNREACHABLE, "-114", fault("-114")),
    SendCase("Zalo too old", ok, ErrorKind.UNREACHABLE, "-110", fault("-110")),
    # The template: every message alike, so the campaign stops at its first.
    SendCase(
        "template refused", ok, ErrorKind.PERMANENT, "-109", fault("-109"), campaign_wide=True
    ),
    SendCase(
        "template data empty",
        ok,
        ErrorKind.PERMANENT,
        "-111",
        fault("-111"),
        False,
        None,
        campaign_wide=True,
    ),
    SendCase("one recipient's data", ok, ErrorKind.PERMANENT, "-112", fault("-112")),
    SendCase("daily quota used up", ok, ErrorKind.HALT, "-144", fault("-144")),
    SendCase("out of balance", ok, ErrorKind.HALT, "-115", fault("-115")),
    SendCase("app secret invalid", ok, ErrorKind.HALT, "-104", fault("-104")),
    SendCase("unknown error, later", ok, ErrorKind.RETRYABLE, "-100", fault("-100")),
    SendCase("unlisted code", ok, ErrorKind.PERMANENT, "-999", fault("-999")),
    SendCase(
        "a code re-classified in the settings",
        settings(codes={"-119": "permanent"}),
        ErrorKind.PERMANENT,
        "-119",
        fault("-119"),
    ),
    SendCase(
        "refresh token refused",
        settings(access_token=None, refresh_token="spent-refresh-token"),
        ErrorKind.HALT,
        "refresh_refused",
    ),
    SendCase(
        "Zalo down", ok, ErrorKind.RETRYABLE, "http_503", ({"http": 503, "requests": 1},), True
    ),
    SendCase(
        "no answer", ok, ErrorKind.AMBIGUOUS, "read_timeout", ({"hang": True, "requests": 1},)
    ),
    SendCase(
        "nobody listening",
        settings(base_url="http://127.0.0.1:9"),
        ErrorKind.RETRYABLE,
        "connect_error",
        provider_wide=True,
    ),
]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("case", SEND_CASES, ids=lambda c: c.name)
def test_send(case, gateway, capsys):
    # The fake serves the token service too (Zalo's is on another host).
    case = dataclasses.replace(case, settings={"oauth_url": gateway.url, **case.settings})
    check_send(case, capsys, SECRETS, gateway=gateway, outgoing=message(template=TEMPLATE))


def run(provider, *coroutines):
    async def together():
        try:
            return await asyncio.gather(*coroutines, return_exceptions=True)
        finally:
            await provider.aclose()

    return asyncio.run(together())


def test_the_request_carries_what_zns_wants(gateway):
    gateway.reset()
    provider = providers.create("z", settings(gateway))
    (result,) = run(provider, provider.send(message(42, template=TEMPLATE)))
    ((_, phone, tracking, answer),) = gateway.received()
    assert (phone, answer) == ("84912345678", "0")
    assert tracking.startswith("loa-42-") and provider.message_of(tracking) == 42
    assert len(result.provider_message_id) == 32
    assert provider.quota["remaining"] == provider.quota["daily"] - 1


def test_a_message_without_a_template_is_refused_before_zalo(gateway):
    gateway.reset()
    provider = providers.create("z", settings(gateway))
    (error,) = run(provider, provider.send(message()))
    assert isinstance(error, SendError) and error.campaign_wide
    assert gateway.received() == []


def test_an_expired_token_is_renewed_once_for_many_sends(gateway):
    """Twenty sends at once meet an expired token: Zalo refreshes once (its refresh token
    is single-use: a second refresh with it would be refused), and every send goes."""
    gateway.reset()
    gateway._call("/_fake/expire", {})
    before = gateway._call("/_fake/tokens")["refreshes"]
    provider = providers.create("z", settings(gateway, access_token=before_pair(gateway)))
    results = run(provider, *(provider.send(message(i, template=TEMPLATE)) for i in range(20)))
    assert all(not isinstance(r, BaseException) for r in results), results
    assert gateway._call("/_fake/tokens")["refreshes"] == before + 1
    answers = [row[3] for row in gateway.received()]
    assert answers.count("0") == 20  # each went once; the -124s were before the refresh


def before_pair(gateway) -> str:
    return gateway._call("/_fake/tokens")["access_token"]


RECEIPT_CASES = [
    ReceiptCase(
        "received",
        {"event_name": "user_received_message", "message.msg_id": "abc", "timestamp": "1"},
        Status.DELIVERED,
    ),
    ReceiptCase(
        "seen", {"event_name": "user_seen_message", "message.msg_id": "abc"}, Status.DELIVERED
    ),
    ReceiptCase("another event", {"event_name": "follow", "follower.id": "9"}, None),
    ReceiptCase("not an event", {"message.msg_id": "abc"}, None, invalid=True),
]


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=lambda c: c.name)
def test_receipt(case):
    check_receipt(case, settings())


def signed(body: bytes, timestamp: str, secret: str = FAKE.oa_secret, app: str = FAKE.app_id):
    zns = Zns(app_id=app, oa_secret=secret)
    headers = {"x-zevent-signature": signature(zns, body, timestamp)}
    form = {k: str(v) for k, v in json.loads(body).items() if not isinstance(v, dict)}
    return inbound(form=form, headers=headers, body=body)


BODY = event_body(FAKE, "abc", "7", 1_700_000_000_000)
PROOF_CASES = [
    ProofCase("signed by the OA", settings(), signed(BODY, "1700000000000"), True),
    ProofCase("another secret", settings(), signed(BODY, "1700000000000", "another-secret"), False),
    ProofCase(
        "no OA secret configured",
        settings(oa_secret_key=None),
        signed(BODY, "1700000000000"),
        False,
    ),
    ProofCase(
        "body changed after signing",
        settings(),
        inbound(
            form={"app_id": FAKE.app_id, "timestamp": "1700000000000"},
            headers=signed(BODY, "1700000000000").headers,
            body=BODY.replace(b'"abc"', b'"xyz"'),
        ),
        False,
    ),
    ProofCase(
        "another app's event",
        settings(),
        signed(event_body(Zns(app_id="999"), "abc", "7", 1), "1", app="999"),
        False,
    ),
    ProofCase("unsigned", settings(), inbound(form={"app_id": FAKE.app_id}, body=BODY), False),
]


@pytest.mark.parametrize("case", PROOF_CASES, ids=lambda c: c.name)
def test_proof(case):
    check_proof(case)


def test_after_a_refused_refresh_a_new_pair_in_the_settings_is_taken(gateway):
    """The halt says what to do; once done (a new pair in the settings), the store that
    held the refused pair takes the new one, and sending goes on."""
    from providers.tokens import MemoryTokens

    gateway.reset()
    store = MemoryTokens()
    spent = providers.create(
        "z", settings(gateway, access_token=None, refresh_token="spent-refresh-token"),
        tokens=store,
    )  # fmt: skip
    (refused,) = run(spent, spent.send(message(1, template=TEMPLATE)))
    assert isinstance(refused, SendError) and refused.kind is ErrorKind.HALT
    assert "LOA_PROVIDERS__Z__REFRESH_TOKEN" in refused.detail
    issued = gateway._call("/_fake/tokens")["refresh_token"]
    mended = providers.create(
        "z", settings(gateway, access_token=None, refresh_token=issued), tokens=store
    )
    (result,) = run(mended, mended.send(message(2, template=TEMPLATE)))
    assert not isinstance(result, BaseException), result


def zns_answering(body: dict):
    """A ZNS endpoint answering ``body`` to every send (and the fake's tokens)."""
    from tests.providers.hostile import web_app

    async def handler(request, server):
        from aiohttp import web

        return web.json_response(body)

    return web_app(handler)


ACCEPTED = {"msg_id": "abc", "quota": {"dailyQuota": 1000, "remainingQuota": 999}}


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"error": 0.0, "data": ACCEPTED}, "abc"),  # a float zero is zero
        ({"error": "0", "data": ACCEPTED}, "abc"),
        ({"error": " -118 ", "data": {}}, (ErrorKind.UNREACHABLE, "-118")),
        ({"error": -118.0, "data": {}}, (ErrorKind.UNREACHABLE, "-118")),
        ({"error": None}, (ErrorKind.AMBIGUOUS, "bad_answer")),  # taken or not: unknown
        ({"error": False}, (ErrorKind.AMBIGUOUS, "bad_answer")),
        ({"error": [0]}, (ErrorKind.AMBIGUOUS, "bad_answer")),
        ({"error": "9" * 5000}, (ErrorKind.AMBIGUOUS, "bad_answer")),
        ({"error": 0, "data": {"quota": {"remainingQuota": "9" * 5000}, "msg_id": "x"}}, "x"),
        ({"error": 0, "data": {"quota": {"remainingQuota": -5}, "msg_id": "y"}}, "y"),
    ],
    ids=[
        "0.0",
        "'0'",
        "' -118 '",
        "-118.0",
        "null",
        "false",
        "[0]",
        "5000 digits",
        "quota of 5000 digits",
        "quota below zero",
    ],
)
def test_odd_numbers_in_a_zns_answer_are_read_as_zalo_means_them(answer, expected):
    with zns_answering(answer) as server:
        zalo = providers.create("z", settings(base_url=server.url, oauth_url=server.url))
        (result,) = run(zalo, zalo.send(message(1, template=TEMPLATE)))
    if isinstance(expected, str):
        assert result.provider_message_id == expected
    else:
        assert isinstance(result, SendError) and (result.kind, result.code) == expected


@pytest.mark.usefixtures("no_network")
def test_a_quota_answered_below_zero_stops_the_next_send_before_zalo():
    answer = {"error": 0, "data": {"quota": {"remainingQuota": -5}, "msg_id": "y"}}
    with zns_answering(answer) as server:
        zalo = providers.create("z", settings(base_url=server.url, oauth_url=server.url))
        (first,) = run(zalo, zalo.send(message(1, template=TEMPLATE)))
        assert first.provider_message_id == "y" and zalo.quota["remaining"] == 0
        (third,) = run(zalo, zalo.send(message(3, template=TEMPLATE)))
    assert isinstance(third, SendError) and third.kind is ErrorKind.HALT


def text_answering(status: int, body: str, content_type: str = "text/html"):
    from tests.providers.hostile import web_app

    async def handler(request, server):
        from aiohttp import web

        return web.Response(status=status, text=body, content_type=content_type)

    return web_app(handler)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (
            zns_answering({"error": -14014, "message": "Invalid refresh token"}),
            ErrorKind.HALT,
            "refresh_refused",
        ),
        (text_answering(200, "<html>a captive portal</html>"), ErrorKind.HALT, "http_200"),
        (text_answering(404, "not found"), ErrorKind.HALT, "http_404"),
        (text_answering(503, "down"), ErrorKind.RETRYABLE, "http_503"),
        (zns_answering({"access_token": 7, "refresh_token": ["x"]}), ErrorKind.HALT, "http_200"),
        (zns_answering({"error": -14002}), ErrorKind.HALT, "refresh_-14002"),
        (zns_answering({"message": "Forbidden"}), ErrorKind.HALT, "http_200"),
    ],
    ids=[
        "Zalo refuses",
        "not Zalo, 200",
        "not Zalo, 404",
        "token service down",
        "odd types",
        "the app refused",
        "a proxy's JSON",
    ],
)
def test_a_refresh_answer_says_what_it_was(answer, kind, code):
    """Only Zalo's own refusal of the token (-14014) says the refresh token is spent (a
    person must issue a new pair, which may then replace it); any other refusal halts
    keeping the stored pair; an answer that is not Zalo's says where Loa asked; one down,
    try later."""
    with answer as server:
        zalo = providers.create(
            "z", settings(access_token=None, base_url=server.url, oauth_url=server.url)
        )
        (error,) = run(zalo, zalo.send(message(1, template=TEMPLATE)))
    assert isinstance(error, SendError) and (error.kind, error.code) == (kind, code)
    if code == "http_200":
        assert "oauth_url" in error.detail


def test_a_token_store_that_fails_holds_the_message_back_unsent(gateway):
    """The ledger away while a send reads its tokens: nothing went, so the message is
    tried again later (never ``unknown``, which would send its SMS)."""

    class Away:
        async def current(self, seed):
            raise ConnectionError("ledger away")

    gateway.reset()
    zalo = providers.create("z", settings(gateway), tokens=Away())
    (error,) = run(zalo, zalo.send(message(1, template=TEMPLATE)))
    assert (error.kind, error.code, error.provider_wide) == (
        ErrorKind.RETRYABLE,
        "token_store",
        True,
    )
    assert gateway.received() == []


def test_only_this_instance_s_tracking_ids_name_a_message():
    """Another system sending through the same OA numbers its messages 1, 2, 3 … too:
    only a tracking id this instance made (its prefix and its mac) names a message."""
    zalo = providers.create("z", settings())
    other = providers.create("z", settings(secret_key="another-app-secret"))
    made = zalo.tracking_id(7)
    assert zalo.message_of(made) == 7
    for foreign in ("7", "loa-7", other.tracking_id(7), made[:-1] + "0", "loa-" + "9" * 5000,
                    made.replace("loa-7", "loa-8"), "", "-", "loa--"):  # fmt: skip
        assert zalo.message_of(foreign) is None, foreign
    staging = providers.create("z", settings(tracking_prefix="staging-"))
    assert zalo.message_of(staging.tracking_id(7)) is None
