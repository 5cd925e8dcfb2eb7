"""A hostile or broken provider must not hurt Loa (found by an attacker): each server
below, started in the test, once redirected our credentials elsewhere, took gigabytes of
memory, held a send for minutes, or answered what the ledger could not store.
`loa provider test` says each in one line."""

from __future__ import annotations

import asyncio
import json
import tracemalloc

import pytest
from aiohttp import web

import providers
from ledger import receipts as ledger_receipts
from ledger.schema import messages, receipts
from providers import ErrorKind, SendError, SendResult
from providers.base import (
    CODE_LENGTH,
    ID_LENGTH,
    NETWORK_LENGTH,
    RAW_STATUS_LENGTH,
    Receipt,
    storable,
)
from providers.http import MAX_ANSWER_BYTES
from tests.providers.harness import message, no_network  # noqa: F401 - fixture
from tests.providers.hostile import Hostile, drip, gzip_of_zeros, raw, read_request, web_app
from tests.scripts.test_cli import loa

ACCOUNT = "AC" + "0" * 32
TOKEN = "fake-twilio-token-7f3a9c"
ESMS = {"type": "esms", "api_key": "fake-key-4411", "secret_key": "fake-secret-9932"}
TWILIO = {"type": "twilio", "account_sid": ACCOUNT, "auth_token": TOKEN, "from_number": "+1500"}
#: Short timeouts: each hostile server here holds a request for ten seconds or more.
QUICK = {"connect_timeout": 1.0, "read_timeout": 2.0, "request_timeout": 1.0}


def provider(settings: dict[str, object], url: str, **more: object) -> providers.Provider:
    return providers.create("under-test", {**settings, "base_url": url, **QUICK, **more})


def attempt(instance: providers.Provider) -> SendResult | SendError:
    """One send, from outside a loop: its result, or its error classified as the worker
    classifies it."""

    async def once() -> SendResult | SendError:
        try:
            return await instance.send(message())
        except Exception as exc:
            return instance.classify(exc)
        finally:
            await instance.aclose()

    return asyncio.run(once())


def checked(instance: providers.Provider) -> str | None:
    """The account check's problem (``check_account`` never raises)."""

    async def once() -> str | None:
        try:
            return (await instance.check_account()).problem
        finally:
            await instance.aclose()

    return asyncio.run(once())


def answering(status: int = 200, body: bytes = b"", content_type: str | None = None, **headers):
    """A handler answering the same to every request."""

    async def handler(request: web.Request, server: Hostile) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


# --- storable: one place -------------------------------------------------------------


def test_the_lengths_providers_cut_to_are_the_ledgers_columns():
    assert messages.c.provider_message_id.type.length == ID_LENGTH
    assert messages.c.error_code.type.length == CODE_LENGTH
    assert receipts.c.raw_status.type.length == RAW_STATUS_LENGTH
    assert receipts.c.network.type.length == NETWORK_LENGTH
    assert ledger_receipts.LIMITS == {
        "provider_message_id": ID_LENGTH,
        "raw_status": RAW_STATUS_LENGTH,
        "code": CODE_LENGTH,
        "network": NETWORK_LENGTH,
    }


def test_a_string_the_ledger_cannot_store_is_made_storable_and_stays_recognisable():
    assert storable("\x1b[31mred\x00", 32) == "\ufffd[31mred\ufffd"
    assert storable("a\ud800b\nc", 32) == "a\ufffdb\ufffdc"  # a lone surrogate encodes nowhere
    assert storable("Đã gửi 100", 32) == "Đã gửi 100"  # Vietnamese is kept as it is
    assert storable("9" * 40, CODE_LENGTH) == "9" * 32
    ordinary = "SM" + "a" * 32
    assert storable(ordinary, ID_LENGTH) is ordinary  # nothing copied when nothing is wrong


def test_what_a_provider_says_is_storable_once_it_is_a_result_an_error_or_a_receipt():
    hostile_id = "SM\x00" + "a" * 100
    sent = SendResult(hostile_id)
    receipt = Receipt(hostile_id, None, "\x1b[2Jdelivered", "3\x000", "viettel\x07" * 5)
    assert sent.provider_message_id == receipt.provider_message_id == "SM\ufffd" + "a" * 61
    assert (receipt.raw_status, receipt.code) == ("\ufffd[2Jdelivered", "3\ufffd0")
    assert receipt.network is not None and len(receipt.network) == NETWORK_LENGTH
    error = SendError(ErrorKind.PERMANENT, "\x1b[31mred\x00", "x\r\ny" * 100)
    assert error.code == "\ufffd[31mred\ufffd"
    assert "\n" not in error.detail and len(error.detail) == 200


@pytest.mark.usefixtures("no_network")
def test_an_esms_code_result_with_a_nul_and_an_escape_is_kept_cleaned():
    body = json.dumps({"CodeResult": "\x1b[31mred\x00"}).encode()
    with web_app(answering(body=body, content_type="application/json")) as server:
        error = attempt(provider(ESMS, server.url))
    assert isinstance(error, SendError)
    assert (error.kind, error.code) == (ErrorKind.PERMANENT, "\ufffd[31mred\ufffd")


@pytest.mark.usefixtures("no_network")
def test_a_twilio_sid_the_ledger_cannot_hold_is_cut_and_cleaned():
    body = json.dumps({"sid": "SM\x00" + "f" * 100, "status": "queued"}).encode()
    with web_app(answering(201, body, content_type="application/json")) as server:
        sent = attempt(provider(TWILIO, server.url))
    assert isinstance(sent, SendResult)
    assert sent.provider_message_id == "SM\ufffd" + "f" * 61


# --- redirects ------------------------------------------------------------------------


@pytest.fixture
def target():
    """Where a hostile redirect points: it must never hear from us."""
    with web_app(answering(200, b'{"CodeResult": "100"}')) as server:
        yield server


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_an_esms_redirect_is_not_followed_and_sends_nothing_there(target, status):
    """Followed, a 307 re-posted the ApiKey, SecretKey, number and text to its target."""
    elsewhere = target.url + "/steal"
    with web_app(answering(status, Location=elsewhere)) as server:
        error = attempt(provider(ESMS, server.url))
        problem = checked(provider(ESMS, server.url))
    assert isinstance(error, SendError)
    assert (error.kind, error.code) == (ErrorKind.PERMANENT, f"http_{status}")
    assert error.detail == f"redirect to {elsewhere}, not followed"
    assert problem == f"eSMS answered HTTP {status} (redirect to {elsewhere}, not followed)"
    assert len(server.received) == 2  # the send and the balance check, once each
    assert target.received == []


@pytest.mark.usefixtures("no_network")
def test_a_twilio_redirect_is_not_followed(target):
    with web_app(answering(302, Location=target.url)) as server:
        error = attempt(provider(TWILIO, server.url))
        problem = checked(provider(TWILIO, server.url))
    assert isinstance(error, SendError) and (error.kind, error.code) == (
        ErrorKind.PERMANENT,
        "http_302",
    )
    assert problem == f"Twilio answered HTTP 302 (redirect to {target.url}, not followed)"
    assert target.received == []


# --- answers too large ----------------------------------------------------------------


async def endless(request: web.Request, server: Hostile) -> web.StreamResponse:
    """Two gigabytes of JSON-ish bytes, streamed with no length said."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    chunk = b" " * 65536
    try:
        while server.sent < 2 << 30:
            await response.write(chunk)
            server.sent += len(chunk)
    except ConnectionError:
        pass  # the client hung up: what the test wants
    return response


async def declared(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Hostile):
    """An answer that says it is two gigabytes long, and waits for the client to go."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: 2147483648\r\n\r\n")
    await writer.drain()
    await reader.read()  # until the client hangs up


BOMB = gzip_of_zeros(128 << 20)


async def bomb(request: web.Request, server: Hostile) -> web.StreamResponse:
    """128 MB of zeros, gzipped to a thousandth of that."""
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return web.Response(body=BOMB, headers=headers)


def bounded(instance: providers.Provider) -> tuple[SendResult | SendError, int]:
    """A send, and the most memory it held at once (bytes)."""
    tracemalloc.start()
    try:
        outcome = attempt(instance)
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("settings", [ESMS, TWILIO], ids=["esms", "twilio"])
@pytest.mark.parametrize(
    "serve",
    [lambda: web_app(endless), lambda: raw(declared), lambda: web_app(bomb)],
    ids=["streamed", "declared", "gzip-bomb"],
)
def test_an_answer_too_large_is_refused_in_bounded_memory(settings, serve):
    """A 2 GB answer once took 4.6 GB of memory. A 2xx this large may have come after
    the message was taken: in doubt (eSMS then resends under the same RequestId)."""
    with serve() as server:
        outcome, peak = bounded(provider(settings, server.url, request_timeout=60))
    assert isinstance(outcome, SendError), outcome
    assert (outcome.kind, outcome.code) == (ErrorKind.AMBIGUOUS, "bad_answer")
    assert outcome.detail.startswith("an answer of more than 1 MB (HTTP 200, application/json")
    assert peak < 16 * MAX_ANSWER_BYTES, f"{peak:,} bytes held"


@pytest.mark.usefixtures("no_network")
def test_a_refusal_too_large_is_classified_by_its_status():
    async def down(request: web.Request, server: Hostile) -> web.StreamResponse:
        return web.Response(status=503, body=b" " * (3 * MAX_ANSWER_BYTES))

    with web_app(down) as server:
        error = attempt(provider(TWILIO, server.url))
    assert isinstance(error, SendError)
    assert (error.kind, error.code, error.provider_wide) == (ErrorKind.RETRYABLE, "http_503", True)


# --- an answer at a crawl -------------------------------------------------------------

ESMS_LAST = b'Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{"CodeResult":"100"}'
TWILIO_LAST = b'Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{"sid":"SM123"}'


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("settings", "last"), [(ESMS, ESMS_LAST), (TWILIO, TWILIO_LAST)], ids=["esms", "twilio"]
)
def test_an_answer_dripping_a_header_line_at_a_time_is_cut_at_the_deadline(settings, last):
    """Each line comes well within the read timeout (2 s), so only the whole request's
    deadline (1 s) ends it: without one, the send held for 12 s, then succeeded."""
    with raw(drip(lines=60, every=0.2, last=last)) as server:
        error = attempt(provider(settings, server.url))
        problem = checked(provider(settings, server.url))
    assert isinstance(error, SendError), error
    assert (error.kind, error.code) == (ErrorKind.AMBIGUOUS, "read_timeout")
    assert error.detail == "no whole answer within the request's deadline"
    assert problem == (
        f"no usable answer from {server.url}: no whole answer within the request's deadline"
    )
    assert server.sent < 2 * 60  # cut short, both times


def test_the_deadline_defaults_to_the_connect_and_read_timeouts():
    esms = providers.create("a", {**ESMS, "connect_timeout": 2, "read_timeout": 5})
    assert esms.config.deadline == 7 and esms._http.deadline == 7
    twilio = providers.create("b", {**TWILIO, "request_timeout": 30})
    assert twilio.config.deadline == 30
    with pytest.raises(providers.ProviderConfigError, match="request_timeout"):
        providers.create("c", {**ESMS, "request_timeout": 0})


# --- answers that are not what the API returns -----------------------------------------


@pytest.mark.usefixtures("no_network")
def test_a_twilio_html_page_is_an_unreadable_answer_said_as_such():
    page = b"<html><body>Welcome to nginx!</body></html>"
    with web_app(answering(200, page, content_type="text/html")) as server:
        error = attempt(provider(TWILIO, server.url))
        problem = checked(provider(TWILIO, server.url))
    assert isinstance(error, SendError)  # a 2xx: the message may have gone out
    assert (error.kind, error.code) == (ErrorKind.AMBIGUOUS, "bad_answer")
    assert error.detail == "unreadable: HTTP 200, text/html"
    assert problem == "Twilio's answer to the account check was unreadable: HTTP 200, text/html"


@pytest.mark.usefixtures("no_network")
def test_a_twilio_error_of_the_new_shape_with_nonsense_in_it_is_classified_by_status():
    """An RFC 9457 error (the SDK's ``TwilioServiceException``), its status and code not
    numbers: once a traceback in `loa provider test`."""
    body = json.dumps({"type": "x", "title": "no", "status": "teapot", "code": {"a": 1}})
    with web_app(answering(400, body.encode(), content_type="application/json")) as server:
        error = attempt(provider(TWILIO, server.url))
        problem = checked(provider(TWILIO, server.url))
    assert isinstance(error, SendError)
    assert (error.kind, error.code) == (ErrorKind.PERMANENT, "http_400")
    assert problem == "Twilio refused the account check: http_400 refused"


@pytest.mark.usefixtures("no_network")
def test_an_esms_answer_that_is_not_json_is_said_with_what_it_was():
    with web_app(answering(200, b"\x00\xff<html>", content_type="text/html")) as server:
        error = attempt(provider(ESMS, server.url))
        problem = checked(provider(ESMS, server.url))
    assert isinstance(error, SendError)
    assert (error.kind, error.code) == (ErrorKind.AMBIGUOUS, "bad_answer")
    assert problem == (
        "eSMS's answer to the balance check was unreadable: HTTP 200, text/html, not JSON"
    )


# --- `loa provider test`: one line, exit 1 ------------------------------------------------


def esms_env(url: str, **fields: str) -> dict[str, str]:
    env = {
        "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
        "LOA_PROVIDERS__ESMS_HCM__TYPE": "esms",
        "LOA_PROVIDERS__ESMS_HCM__API_KEY": ESMS["api_key"],
        "LOA_PROVIDERS__ESMS_HCM__SECRET_KEY": ESMS["secret_key"],
        "LOA_PROVIDERS__ESMS_HCM__BASE_URL": url,
    }
    return env | {f"LOA_PROVIDERS__ESMS_HCM__{k.upper()}": v for k, v in fields.items()}


def intl_env(url: str) -> dict[str, str]:
    return {
        "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
        "LOA_PROVIDERS__INTL__TYPE": "twilio",
        "LOA_PROVIDERS__INTL__ACCOUNT_SID": ACCOUNT,
        "LOA_PROVIDERS__INTL__AUTH_TOKEN": TOKEN,
        "LOA_PROVIDERS__INTL__BASE_URL": url,
    }


def one_line(result) -> str:
    """The command's whole complaint: exit 1, one line on stderr, nothing on stdout."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_loa_provider_test_says_an_unreadable_twilio_answer_in_one_line(tmp_path, target):
    """Once a JSONDecodeError traceback, for an HTML page and for a redirect alike."""
    page = answering(200, b"<html>It works!</html>", "text/html")
    with web_app(page) as server:
        result = loa("provider", "test", "intl", cwd=tmp_path, env=intl_env(server.url))
    assert one_line(result) == (
        "provider intl: Twilio's answer to the account check was unreadable: HTTP 200, text/html"
    )
    with web_app(answering(302, Location=f"{target.url}/login")) as server:
        result = loa("provider", "test", "intl", cwd=tmp_path, env=intl_env(server.url))
    assert one_line(result) == (
        f"provider intl: Twilio answered HTTP 302 (redirect to {target.url}/login, not followed)"
    )
    assert target.received == []


def test_loa_provider_test_names_an_esms_redirect_and_sends_nothing_there(tmp_path, target):
    elsewhere = f"{target.url}/steal"
    with web_app(answering(307, Location=elsewhere)) as server:
        result = loa(
            "provider", "test", "esms_hcm", "--to", "0912345678",
            cwd=tmp_path, env=esms_env(server.url),
        )  # fmt: skip
    assert one_line(result) == (
        f"provider esms_hcm: eSMS answered HTTP 307 (redirect to {elsewhere}, not followed)"
    )
    assert target.received == []  # neither the keys nor the test SMS


def test_loa_provider_test_of_an_esms_dripping_its_answer_ends_at_the_deadline(tmp_path):
    with raw(drip(lines=600, every=0.2, last=ESMS_LAST)) as server:
        env = esms_env(server.url, read_timeout="5", request_timeout="1")
        result = loa("provider", "test", "esms_hcm", cwd=tmp_path, env=env)
    assert one_line(result) == (
        f"provider esms_hcm: no usable answer from {server.url}: "
        "no whole answer within the request's deadline"
    )


def test_loa_provider_test_prints_no_escape_sequence_a_provider_answers(tmp_path):
    body = json.dumps({"CodeResponse": "\x1b[31m[bold]red\x00", "Balance": 1}).encode()
    with web_app(answering(200, body, "application/json")) as server:
        result = loa("provider", "test", "esms_hcm", cwd=tmp_path, env=esms_env(server.url))
    assert one_line(result) == (
        "provider esms_hcm: eSMS refused the balance check: \ufffd[31m[bold]red\ufffd not accepted"
    )
