"""eSMS, against a local server speaking eSMS's JSON API (``providers.fakes.esms``)."""

import pytest

import providers
from campaigns.status import Status
from providers import ErrorKind
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
    send,
)

SECRETS = ("api_key", "secret_key", "callback_token")


@pytest.fixture(scope="module")
def gateway():
    with fake_gateway() as running:
        yield running


def settings(gateway=None, **overrides):
    """The fake's credentials; ``base_url`` is the fake's unless a case names its own."""
    base = {"type": "esms", "api_key": "fake-key", "secret_key": "fake-secret"}
    base["read_timeout"] = 1.0
    if gateway is not None:
        base["base_url"] = gateway.url
    return {**base, **overrides}


ok = settings()
SEND_CASES = [
    SendCase("accepted", ok, None),
    SendCase(
        "accepted, with a callback",
        settings(
            callback_url="https://loa.example.vn/r/esms", callback_token="esms-callback-tok-9876"
        ),
        None,
    ),
    SendCase("credentials refused", settings(secret_key="wrong"), ErrorKind.HALT, "101"),
    SendCase("balance exhausted", ok, ErrorKind.HALT, "103", ({"code": "103", "requests": 1},)),
    SendCase("invalid phone", ok, ErrorKind.PERMANENT, "108", ({"code": "108", "requests": 1},)),
    SendCase(
        "template mismatch", ok, ErrorKind.PERMANENT, "146", ({"code": "146", "requests": 1},)
    ),
    SendCase("unlisted code", ok, ErrorKind.PERMANENT, "555", ({"code": "555", "requests": 1},)),
    SendCase(
        "gateway down",
        ok,
        ErrorKind.RETRYABLE,
        "http_503",
        ({"http": 503, "requests": 1},),
        True,
    ),
    SendCase(
        "gateway down, back in a minute",
        ok,
        ErrorKind.RETRYABLE,
        "http_503",
        ({"http": 503, "retry_after": 60, "requests": 1},),
        True,
        retry_after=60,
    ),
    SendCase(
        "throttled",
        ok,
        ErrorKind.RETRYABLE,
        "http_429",
        ({"http": 429, "retry_after": 2, "requests": 1},),
        True,
        retry_after=2,
        throttled=True,
    ),
    SendCase(
        "throttled, no wait asked",
        ok,
        ErrorKind.RETRYABLE,
        "http_429",
        ({"http": 429, "requests": 1},),
        True,
        throttled=True,
    ),
    SendCase("not found", ok, ErrorKind.PERMANENT, "http_404", ({"http": 404, "requests": 1},)),
    SendCase("forbidden", ok, ErrorKind.HALT, "http_403", ({"http": 403, "requests": 1},)),
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
    check_send(case, capsys, SECRETS, gateway=gateway)


RECEIPT_CASES = [
    ReceiptCase(
        "delivered", {"SMSID": "1", "RequestId": "loa-7", "SendStatus": "5"}, Status.DELIVERED
    ),
    ReceiptCase("at carrier", {"SMSID": "1", "RequestId": "loa-7", "SendStatus": "7"}, Status.SENT),
    ReceiptCase(
        "rejected", {"SMSID": "1", "RequestId": "loa-7", "SendStatus": "4"}, Status.FAILED, "4"
    ),
    ReceiptCase("unmapped", {"SMSID": "1", "RequestId": "loa-7", "SendStatus": "9"}, None),
    ReceiptCase("no request id", {"SMSID": "1", "SendStatus": "5"}, None, invalid=True),
    ReceiptCase("empty request id", {"RequestId": "", "SendStatus": "5"}, None, invalid=True),
]


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=lambda c: c.name)
def test_receipt(case):
    check_receipt(case, {"type": "esms", "api_key": "k", "secret_key": "s"})


def test_a_resend_with_the_same_request_id_is_not_a_second_sms(gateway):
    """The idempotency key at work: a message sent twice reaches eSMS twice, is taken
    once, and both sends report the same id."""
    gateway.reset()
    provider = providers.create("e", settings(gateway))
    assert provider.idempotent
    first = send(provider, message(42))
    again = send(provider, message(42, attempt=2))
    answers = [(row[2], row[3]) for row in gateway.received()]
    assert answers == [("loa-42", "100"), ("loa-42", "124")]
    assert first == again


def test_the_request_carries_the_message_as_esms_wants_it(gateway):
    gateway.reset()
    provider = providers.create("e", settings(gateway, request_id_prefix="hcm-"))
    send(provider, message(7))
    ((_, phone, request_id, answer),) = gateway.received()
    assert (phone, request_id, answer) == ("84912345678", "hcm-7", "100")


def test_the_callback_url_carries_the_secret_token():
    provider = providers.create(
        "e",
        settings(
            callback_url="https://loa.example.vn/receipts/esms-hcm?v=1",
            callback_token="s3cret-t0ken-esms-4821",
        ),
    )
    assert (
        provider.callback_url()
        == "https://loa.example.vn/receipts/esms-hcm?v=1&token=s3cret-t0ken-esms-4821"
    )
    assert "s3cret-t0ken" not in repr(provider.config)


@pytest.mark.parametrize(
    ("telcoid", "network"), [("1", "viettel"), ("3", "vinaphone"), ("42", "telcoid:42"), ("", None)]
)
def test_a_callback_names_the_network_that_really_served_the_number(telcoid, network):
    provider = providers.create("e", settings())
    payload = {"RequestId": "loa-7", "SendStatus": "5", "telcoid": telcoid}
    assert provider.parse_receipt(payload).network == network


def test_credentials_are_secrets_in_the_settings_model():
    raw = {"type": "esms", "api_key": "key-0123", "secret_key": "secret-4567"}
    _, config = providers.validate_config("e", raw)
    assert "key-0123" not in repr(config) and "secret-4567" not in repr(config)
    assert config.api_key.get_secret_value() == "key-0123"


def test_two_accounts_each_send_under_their_own_registered_brandname():
    from providers import SendError

    with fake_gateway("providers.fakes.esms", "--brandnames", "NinhThuanVT") as account:
        own = providers.create("viettel", settings(account, brandname="NinhThuanVT"))
        assert send(own, message(1)).provider_message_id == "loa-1"
        # Another instance on the same account sends the campaign's brandname, which this
        # account never registered: refused for this message, the account not halted.
        plain = providers.create("other", settings(account))
        with pytest.raises(SendError) as refused:
            send(plain, message(2))
        assert (refused.value.kind, refused.value.code) == (ErrorKind.PERMANENT, "104")
        assert [answer for *_, answer in account.received()] == ["100", "104"]


CALLBACK = {"SMSID": "9", "RequestId": "loa-7", "SendStatus": "5", "telcoid": "1"}
with_token = settings(
    callback_url="https://loa.example.vn/receipts/gw", callback_token="s3cr3t-callback-8817"
)
PROOF_CASES = [
    ProofCase(
        "the right token",
        with_token,
        inbound(query={**CALLBACK, "token": "s3cr3t-callback-8817"}),
        True,
    ),
    ProofCase("a wrong token", with_token, inbound(query={**CALLBACK, "token": "guess"}), False),
    ProofCase("no token", with_token, inbound(query=CALLBACK), False),
    ProofCase(
        "no token configured: nothing can be proven",
        settings(),
        inbound(query={**CALLBACK, "token": ""}),
        False,
    ),
    ProofCase(
        "from an allowed network",
        {**with_token, "callback_ips": ["203.0.113.0/24"]},
        inbound(query={**CALLBACK, "token": "s3cr3t-callback-8817"}, client="203.0.113.9"),
        True,
    ),
    ProofCase(
        "the right token from elsewhere",
        {**with_token, "callback_ips": ["203.0.113.0/24"]},
        inbound(query={**CALLBACK, "token": "s3cr3t-callback-8817"}, client="198.51.100.7"),
        False,
    ),
]


@pytest.mark.parametrize("case", PROOF_CASES, ids=lambda c: c.name)
def test_proof(case):
    check_proof(case)


def test_a_bad_address_list_stops_at_start_up():
    with pytest.raises(providers.ProviderConfigError, match="callback_ips"):
        providers.create("e", settings(callback_ips=["not-a-network"]))


def test_codes_are_described_for_reports():
    provider = providers.create("e", settings())
    assert provider.describe("103") == "balance exhausted"
    assert provider.describe("http_503") == "HTTP 503 from the provider"
    assert provider.describe("555") is None  # not in eSMS's table: never guessed
