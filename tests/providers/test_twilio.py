"""Twilio: requests judged by Twilio's own API description (Prism), failures scripted on a
local server answering as Twilio does (``providers.fakes.twilio``), receipts by table."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from twilio.request_validator import RequestValidator

import providers
from campaigns.status import Status
from campaigns.text import Encoding
from providers import ErrorKind, OutgoingMessage, SendError
from tests.fake_gateway import fake_gateway
from tests.prism import PrismMissing, prism
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
    send,
)
from tests.rig import free_port

SECRETS = ("auth_token",)
ACCOUNT = "AC" + "0" * 32
SERVICE = "MG" + "1" * 32


def settings(**overrides):
    base = {"type": "twilio", "account_sid": ACCOUNT, "auth_token": "fake-twilio-token-7f3a9c"}
    return {**base, "read_timeout": 1.0, **overrides}


@pytest.fixture(scope="module")
def gateway():
    with fake_gateway("providers.fakes.twilio") as running:
        yield running


@pytest.fixture(scope="module")
def prism_url():
    try:
        with prism(free_port()) as url:
            yield url
    except PrismMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


def fault(**what):
    return ({**what, "requests": 1},)


ok = settings()
SEND_CASES = [
    SendCase("accepted", ok, None),
    SendCase(
        "credentials refused",
        settings(auth_token="wrong-twilio-token-5d1e"),
        ErrorKind.HALT,
        "20003",
    ),
    SendCase("invalid number", ok, ErrorKind.PERMANENT, "21211", fault(code=21211)),
    SendCase("unsubscribed", ok, ErrorKind.PERMANENT, "21610", fault(code=21610)),
    SendCase("not a mobile", ok, ErrorKind.PERMANENT, "21614", fault(code=21614)),
    SendCase("region not enabled", ok, ErrorKind.HALT, "21408", fault(code=21408)),
    SendCase("unlisted code", ok, ErrorKind.PERMANENT, "21999", fault(code=21999)),
    SendCase("queue full", ok, ErrorKind.RETRYABLE, "21611", fault(code=21611), True),
    SendCase(
        "too many requests",
        ok,
        ErrorKind.RETRYABLE,
        "20429",
        fault(code=20429),
        True,
        throttled=True,
    ),
    SendCase("down", ok, ErrorKind.RETRYABLE, "http_503", fault(http=503), True),
    SendCase(
        "down, back in a minute",
        ok,
        ErrorKind.RETRYABLE,
        "http_503",
        fault(http=503, retry_after=60),
        True,
        retry_after=60,
    ),
    SendCase(
        "throttled", ok, ErrorKind.RETRYABLE, "http_429", fault(http=429), True, throttled=True
    ),
    # The SDK's exception drops the headers: the adapter still reads Retry-After.
    SendCase(
        "throttled, with a wait",
        ok,
        ErrorKind.RETRYABLE,
        "http_429",
        fault(http=429, retry_after=7),
        True,
        retry_after=7,
        throttled=True,
    ),
    # No idempotency key at Twilio: a request that got no answer may have been sent.
    SendCase("no answer", ok, ErrorKind.AMBIGUOUS, "read_timeout", fault(hang=True)),
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
    check_send(case, capsys, SECRETS, gateway=gateway)


def test_an_unsubscribed_recipient_is_flagged_for_the_opt_out_list(gateway):
    gateway.reset()
    gateway.faults(*fault(code=21610))
    provider = providers.create("intl", settings(base_url=gateway.url))
    with pytest.raises(SendError) as refused:
        send(provider, message())
    assert refused.value.opt_out and refused.value.kind is ErrorKind.PERMANENT


def test_the_request_carries_sender_callback_and_remaining_validity(gateway):
    gateway.reset()
    callback = "https://loa.example.vn/receipts/intl"
    provider = providers.create(
        "intl", settings(base_url=gateway.url, status_callback_url=callback)
    )
    fields = provider.request_fields(message())
    assert fields["from_"] == "NinhThuan"  # the campaign's brandname, alphanumeric
    assert 3500 <= fields["validity_period"] <= 3600  # an hour left, in seconds
    result = send(provider, message())
    ((_, to, sent_callback, answer),) = gateway.received()
    assert (to, sent_callback, answer) == ("+84912345678", callback, "queued")
    assert result.provider_message_id.startswith("SM")


def _outgoing(text: str, encoding: Encoding, hours: float = 2) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=5,
        to="+821012345678",  # a Korean visitor
        text=text,
        sender="NinhThuan",
        encoding=encoding,
        parts=1,
        attempt=1,
        valid_until=datetime.now(UTC) + timedelta(hours=hours),
    )


VIETNAMESE = "Ninh Thuận chào đón quý khách. Hãy cài Bluezone để phòng chống dịch."
CONTRACT_CASES = {
    "ucs2 text, alphanumeric sender": ({}, _outgoing(VIETNAMESE, Encoding.UCS2)),
    "gsm text, from a number": (
        {"from_number": "+15005550006"},
        _outgoing("Welcome to Ninh Thuan. Please install Bluezone.", Encoding.GSM7),
    ),
    "messaging service": ({"messaging_service_sid": SERVICE}, _outgoing(VIETNAMESE, Encoding.UCS2)),
    "messaging service and callback, validity capped at 10 h": (
        {
            "messaging_service_sid": SERVICE,
            "status_callback_url": "https://loa.example.vn/receipts/intl",
        },
        _outgoing(VIETNAMESE, Encoding.UCS2, hours=48),
    ),
}


@pytest.mark.parametrize("name", CONTRACT_CASES)
def test_twilios_own_description_accepts_what_the_adapter_sends(name, prism_url):
    overrides, outgoing = CONTRACT_CASES[name]
    provider = providers.create("intl", settings(base_url=prism_url, **overrides))
    result = send(provider, outgoing)  # Prism answers 422 to a request breaking the spec
    assert result.provider_message_id.startswith("SM")


BREAKINGS = {
    "validity period not an integer": {"validity_period": "ten hours"},
    "messaging service sid of the wrong shape": {"messaging_service_sid": "MG-not-a-sid"},
    "status callback not a URL": {"status_callback": "not a url"},
}


@pytest.mark.parametrize("breaking", BREAKINGS)
def test_a_request_breaking_twilios_description_is_caught(breaking, prism_url):
    """The judge is real: the adapter's own request with one field broken is refused
    (422), which the adapter reports as a permanent refusal."""
    provider = providers.create("intl", settings(base_url=prism_url))
    fields = provider.request_fields(_outgoing(VIETNAMESE, Encoding.UCS2))

    async def create():
        try:
            return await provider._client.messages.create_async(**{**fields, **BREAKINGS[breaking]})
        finally:
            await provider.aclose()

    with pytest.raises(Exception) as refused:
        asyncio.run(create())
    error = provider.classify(refused.value)
    assert (error.kind, error.code) == (ErrorKind.PERMANENT, "http_422")


RECEIPT_CASES = [
    ReceiptCase("delivered", {"MessageSid": "SM1", "MessageStatus": "delivered"}, Status.DELIVERED),
    ReceiptCase("read", {"MessageSid": "SM1", "MessageStatus": "read"}, Status.DELIVERED),
    ReceiptCase("sent", {"MessageSid": "SM1", "MessageStatus": "sent"}, Status.SENT),
    ReceiptCase("queued", {"MessageSid": "SM1", "MessageStatus": "queued"}, Status.SENT),
    ReceiptCase(
        "undelivered",
        {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"},
        Status.UNDELIVERED,
        "30003",
    ),
    ReceiptCase(
        "failed",
        {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30007"},
        Status.FAILED,
        "30007",
    ),
    ReceiptCase(
        "validity ran out",
        {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30036"},
        Status.EXPIRED,
        "30036",
    ),
    ReceiptCase("a status Twilio adds later", {"MessageSid": "SM1", "MessageStatus": "x"}, None),
    ReceiptCase("no sid", {"MessageStatus": "delivered"}, None, invalid=True),
    ReceiptCase("no status", {"MessageSid": "SM1"}, None, invalid=True),
]


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=lambda c: c.name)
def test_receipt(case):
    check_receipt(case, settings())


def test_unknown_statuses_are_kept_raw():
    provider = providers.create("intl", settings())
    receipt = provider.parse_receipt({"MessageSid": "SM1", "MessageStatus": "x"})
    assert (receipt.status, receipt.raw_status) == (None, "x")


def test_bad_settings_name_the_field():
    with pytest.raises(providers.ProviderConfigError, match="account_sid"):
        providers.create("intl", settings(account_sid="nope"))
    with pytest.raises(providers.ProviderConfigError, match="auth_token"):
        providers.create("intl", {"type": "twilio", "account_sid": ACCOUNT})
    with pytest.raises(providers.ProviderConfigError, match="from_number"):
        providers.create("intl", settings(from_number="a sender far too long"))


PUBLIC = "https://loa.example.vn/receipts/intl"
STATUS = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": ACCOUNT}
SIGNER = RequestValidator("fake-twilio-token-7f3a9c")
behind_proxy = settings(status_callback_url=PUBLIC)
PROOF_CASES = [
    ProofCase(
        "signed for the public URL",
        behind_proxy,
        inbound(
            form=STATUS, headers={"x-twilio-signature": SIGNER.compute_signature(PUBLIC, STATUS)}
        ),
        True,
    ),
    ProofCase(
        "signed with the default port in the URL",
        behind_proxy,
        inbound(
            form=STATUS,
            headers={
                "x-twilio-signature": SIGNER.compute_signature(
                    "https://loa.example.vn:443/receipts/intl", STATUS
                )
            },
        ),
        True,
    ),
    ProofCase(
        "HMAC-SHA256, as the signature settings header says",
        behind_proxy,
        inbound(
            form=STATUS,
            headers={
                "x-twilio-signature": SIGNER.compute_signature(PUBLIC, STATUS, "HMAC_SHA256"),
                "x-twilio-webhooks-signature-settings": "key=k,algorithm=HMAC_SHA256",
            },
        ),
        True,
    ),
    ProofCase(
        "signed for the URL this server sees, not the one Twilio called",
        behind_proxy,
        inbound(
            form=STATUS,
            headers={
                "x-twilio-signature": SIGNER.compute_signature(
                    "http://127.0.0.1:8080/receipts/under-test", STATUS
                )
            },
        ),
        False,
    ),
    ProofCase(
        "a field changed after signing",
        behind_proxy,
        inbound(
            form={**STATUS, "MessageStatus": "undelivered"},
            headers={"x-twilio-signature": SIGNER.compute_signature(PUBLIC, STATUS)},
        ),
        False,
    ),
    ProofCase(
        "another account's token",
        behind_proxy,
        inbound(
            form=STATUS,
            headers={
                "x-twilio-signature": RequestValidator("other").compute_signature(PUBLIC, STATUS)
            },
        ),
        False,
    ),
    ProofCase("no signature", behind_proxy, inbound(form=STATUS), False),
    ProofCase(
        "no public URL configured: the URL the request came to",
        settings(),
        inbound(
            url="http://127.0.0.1:8080/receipts/under-test",
            form=STATUS,
            headers={
                "x-twilio-signature": SIGNER.compute_signature(
                    "http://127.0.0.1:8080/receipts/under-test", STATUS
                )
            },
        ),
        True,
    ),
]


@pytest.mark.parametrize("case", PROOF_CASES, ids=lambda c: c.name)
def test_proof(case):
    check_proof(case)


def test_codes_are_described_for_reports():
    provider = providers.create("t", settings())
    assert provider.describe("21610") == "recipient unsubscribed (STOP)"
    assert provider.describe("30003") == "unreachable handset"
    assert provider.describe("not-a-code") is None
