"""Asking a provider about our own account without sending (``check_account``), and
`loa provider test` reporting it: eSMS's balance endpoint on the fake eSMS (which answers
it as eSMS documents it), Twilio's account resource on its fake and on Prism (Twilio's own
API description), the sandbox with nothing to ask."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import threading
from collections.abc import Iterator

import pytest

import providers
from providers.base import AccountCheck, vnd
from tests.fake_gateway import fake_gateway
from tests.prism import PrismMissing, prism
from tests.providers.harness import no_network  # noqa: F401 - fixture
from tests.rig import free_port
from tests.scripts.test_cli import loa

ACCOUNT = "AC" + "0" * 32
TWILIO_TOKEN = "fake-twilio-token-7f3a9c"


@pytest.fixture(scope="module")
def esms():
    with fake_gateway("providers.fakes.esms") as running:
        yield running


@pytest.fixture(scope="module")
def twilio():
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


def esms_settings(url: str, **overrides: str) -> dict[str, object]:
    base = {"type": "esms", "api_key": "fake-key", "secret_key": "fake-secret"}
    return {**base, "base_url": url, "read_timeout": 2.0, **overrides}


def twilio_settings(url: str, **overrides: str) -> dict[str, object]:
    base = {"type": "twilio", "account_sid": ACCOUNT, "auth_token": TWILIO_TOKEN}
    return {**base, "base_url": url, "read_timeout": 5.0, **overrides}


def check(settings: dict[str, object]) -> AccountCheck:
    provider = providers.create("under-test", settings)

    async def once() -> AccountCheck:
        try:
            return await provider.check_account()
        finally:
            await provider.aclose()

    return asyncio.run(once())


@pytest.mark.usefixtures("no_network")
def test_esms_tells_the_balance_for_our_credentials_and_sends_nothing(esms):
    esms.reset()
    found = check(esms_settings(esms.url))
    assert (found.checked, found.refused, found.problem) == (True, False, None)
    assert found.facts == {"balance": 2_540_300, "currency": "VND", "user_id": "9999"}
    assert found.said == "số dư · balance 2.540.300 ₫ (UserID 9999)"
    assert esms.received() == []  # no message reached the gateway


@pytest.mark.usefixtures("no_network")
def test_esms_refusing_a_wrong_key_is_said_with_its_code(esms):
    found = check(esms_settings(esms.url, secret_key="not-the-secret"))
    assert found.checked and found.refused
    assert found.problem == "eSMS refused our credentials: 101 ApiKey/SecretKey refused"


@pytest.mark.usefixtures("no_network")
def test_an_empty_esms_balance_is_a_problem_before_any_send():
    with fake_gateway("providers.fakes.esms", "--balance", "0") as empty:
        found = check(esms_settings(empty.url))
    assert found.checked and not found.refused
    assert found.problem == "the balance is 0 ₫: every send would be refused (103)"


@pytest.mark.usefixtures("no_network")
def test_esms_down_or_away_is_not_taken_for_refused_credentials(esms):
    esms.reset()
    esms.faults({"http": 503, "requests": 1})
    down = check(esms_settings(esms.url))
    assert (down.checked, down.refused) == (False, False)
    assert down.problem == "eSMS answered HTTP 503 (gateway error)"
    away = check(esms_settings("http://127.0.0.1:9"))
    assert away.problem == "cannot reach http://127.0.0.1:9: could not connect"


@pytest.mark.usefixtures("no_network")
def test_twilio_fetches_the_account_resource(twilio):
    twilio.reset()
    found = check(twilio_settings(twilio.url))
    assert (found.checked, found.problem) == (True, None)
    assert found.facts == {"account_sid": ACCOUNT, "status": "active", "type": "Full"}
    assert twilio.received() == []  # a GET of the account: no message
    refused = check(twilio_settings(twilio.url, auth_token="not-the-token-3b8f2a"))
    assert refused.refused and refused.problem.startswith("Twilio refused our credentials: 20003")


@pytest.mark.usefixtures("no_network")
def test_a_suspended_twilio_account_is_a_problem_before_any_send():
    with fake_gateway("providers.fakes.twilio", "--account-status", "suspended") as suspended:
        found = check(twilio_settings(suspended.url))
    assert found.checked and not found.refused
    assert found.problem == "the account is suspended: Twilio would refuse every send"


def test_the_account_check_follows_twilios_own_description(prism_url):
    """Prism answers only a request its description allows (401 without basic auth, 404
    for a path it does not have), with a body of the account resource's shape."""
    found = check(twilio_settings(prism_url))
    assert found.checked and not found.refused, found.problem
    assert set(found.facts) == {"account_sid", "status", "type"}


def test_the_sandbox_has_nothing_to_check():
    found = check({"type": "sandbox"})
    assert (found.checked, found.problem, found.said) == (False, None, "nothing to check")


def test_vietnamese_money():
    assert [vnd(0), vnd(36_693), vnd(2_540_300), vnd(1234.5)] == [
        "0 ₫",
        "36.693 ₫",
        "2.540.300 ₫",
        "1.234,5 ₫",
    ]


def esms_env(url: str, **fields: str) -> dict[str, str]:
    env = {
        "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
        "LOA_PROVIDERS__ESMS_HCM__TYPE": "esms",
        "LOA_PROVIDERS__ESMS_HCM__API_KEY": "fake-key",
        "LOA_PROVIDERS__ESMS_HCM__SECRET_KEY": "fake-secret",
        "LOA_PROVIDERS__ESMS_HCM__BASE_URL": url,
    }
    env.update({f"LOA_PROVIDERS__ESMS_HCM__{k.upper()}": v for k, v in fields.items()})
    return env


def test_loa_provider_test_exits_1_for_a_wrong_esms_key(tmp_path, esms):
    env = esms_env(esms.url, secret_key="not-the-secret")
    result = loa("provider", "test", "esms_hcm", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "provider esms_hcm: eSMS refused our credentials: 101 ApiKey/SecretKey refused"
    )
    assert "settings ok" not in result.stdout
    as_json = loa("provider", "test", "esms_hcm", "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["credentials"] == "refused"


def test_loa_provider_test_tells_the_esms_balance(tmp_path, esms):
    esms.reset()
    result = loa("provider", "test", "esms_hcm", cwd=tmp_path, env=esms_env(esms.url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "provider esms_hcm (esms): settings ok, credentials accepted; "
        "số dư · balance 2.540.300 ₫ (UserID 9999)"
    )
    as_json = loa("provider", "test", "esms_hcm", "--json", cwd=tmp_path, env=esms_env(esms.url))
    answer = json.loads(as_json.stdout)
    assert (answer["credentials"], answer["problem"]) == ("accepted", None)
    assert answer["account"] == {"balance": 2_540_300, "currency": "VND", "user_id": "9999"}
    assert esms.received() == []


def test_loa_provider_test_of_the_sandbox_checks_nothing(tmp_path):
    result = loa("provider", "test", "sandbox", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["credentials"] == "unchecked"


def test_each_test_sms_reaches_the_provider_as_a_new_message(tmp_path, esms):
    """Two test SMS are two messages: each carries an id of its own, so a provider that
    keys idempotency on it (eSMS's RequestId) sends both, instead of taking the second for
    a resend of the first (answering success and sending nothing)."""
    esms.reset()
    for _ in range(2):
        result = loa(
            "provider", "test", "esms_hcm", "--to", "0912345678", "--sender", "NinhThuan",
            cwd=tmp_path, env=esms_env(esms.url),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    sent = esms.received()
    assert [(phone, outcome) for _, phone, _, outcome in sent] == [("84912345678", "100")] * 2
    assert len({request_id for _, _, request_id, _ in sent}) == 2


def test_a_test_sms_to_a_country_the_provider_does_not_reach_is_refused(tmp_path, esms):
    esms.reset()
    result = loa(
        "provider", "test", "esms_hcm", "--to", "+821020000001",
        cwd=tmp_path, env=esms_env(esms.url),
    )  # fmt: skip
    assert result.returncode == 2
    assert "reaches VN, not KR" in result.stderr
    assert esms.received() == []


@contextlib.contextmanager
def answering(body: bytes) -> Iterator[str]:
    """A server that answers every request 200 with ``body`` (JSON): what a proxy, a
    captive portal or a wrong host might say. Yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("body", [b"{}", b'{"status": null}', b'{"CodeResponse": "101"}'])
def test_a_twilio_answer_that_is_no_account_is_not_taken_for_accepted_credentials(body):
    """Any 200 JSON object once gave "credentials accepted; account AC…: ?" and exit 0;
    an account resource always has a status, one of three (Twilio's account_enum_status)."""
    with answering(body) as url:
        found = check(twilio_settings(url))
    assert found.problem == "Twilio's answer to the account check was not an account (no status)"
    assert not found.checked


def test_a_twilio_status_outside_its_three_is_not_an_account():
    with fake_gateway("providers.fakes.twilio", "--account-status", "mystery") as odd:
        found = check(twilio_settings(odd.url))
    assert found.problem == (
        "Twilio's answer to the account check was not an account (status 'mystery')"
    )


@pytest.mark.parametrize("balance", ["true", "null", '"nhiều"'])
def test_an_esms_balance_that_is_no_number_is_unreadable(balance):
    """``"Balance": true`` read as 1 ₫, a missing one as 0 ₫ (an empty account)."""
    body = f'{{"CodeResponse": "100", "Balance": {balance}}}'.encode()
    with answering(body) as url:
        found = check(esms_settings(url))
    assert found.problem == "eSMS took our credentials but gave an unreadable balance"
