"""One table-driven harness that every provider's tests feed with cases.

A provider test module lists ``SendCase``, ``ReceiptCase`` and ``ProofCase`` rows and
calls ``check_send`` / ``check_receipt`` / ``check_proof``; the harness builds the provider from settings as the
worker does, checks the classification or the status mapping, and checks, for every
case, that no configured secret and no whole phone number reached the logs, and that no
connection left this machine (``no_network``).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import providers
from campaigns.status import Status
from campaigns.text import Encoding
from providers import ErrorKind, InboundRequest, OutgoingMessage, SendError
from worker.logging import configure_logging

TO = "+84912345678"


@dataclass(frozen=True)
class SendCase:
    name: str
    settings: dict[str, Any]
    kind: ErrorKind | None  # None: the send succeeds
    code: str | None = None
    faults: tuple[dict[str, Any], ...] = ()  # scripted on the provider's fake gateway
    provider_wide: bool = False
    #: The wait the provider asked for (its ``Retry-After``), as the adapter must read it.
    retry_after: float | None = None
    #: A refusal of our rate (429 …): the worker adapts the rate instead of pausing.
    throttled: bool = False
    #: Every message of the campaign would be refused alike: the campaign stops.
    campaign_wide: bool = False


@dataclass(frozen=True)
class ReceiptCase:
    name: str
    payload: dict[str, str]
    status: Status | None  # None: kept raw and flagged, never guessed
    code: str | None = None
    invalid: bool = False  # not a receipt of this provider at all


@dataclass(frozen=True)
class ProofCase:
    """A request to the provider's receipt route, and whether it proves itself."""

    name: str
    settings: dict[str, Any]
    request: InboundRequest
    accepted: bool


def inbound(
    url: str = "http://127.0.0.1:8080/receipts/under-test",
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    client: str = "127.0.0.1",
    body: bytes = b"",
) -> InboundRequest:
    return InboundRequest(url, query or {}, form or {}, headers or {}, client, body)


@dataclass
class Sink:
    receipts: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def __call__(self, payload, delay):
        self.receipts.append((dict(payload), delay))


def send(provider, outgoing: OutgoingMessage):
    """Send one message from outside a loop, as a test does (the provider's connections
    are closed afterwards, with the loop they belong to)."""

    async def once():
        try:
            return await provider.send(outgoing)
        finally:
            await provider.aclose()

    return asyncio.run(once())


def message(message_id: int = 1, attempt: int = 1, template=None) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id,
        to=TO,
        text="Đề nghị cài đặt Bluezone",
        sender="NinhThuan",
        encoding=Encoding.UCS2,
        parts=1,
        attempt=attempt,
        valid_until=datetime.now(UTC) + timedelta(hours=1),
        template=template,
    )


@pytest.fixture
def no_network(monkeypatch):
    """Fail any connection to an address that is not this machine's."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
            raise AssertionError(f"a provider test tried to reach {host}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _secrets(settings: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [str(settings[n]) for n in names if n in settings]


def check_send(
    case: SendCase,
    capsys,
    secret_fields: tuple[str, ...] = (),
    gateway=None,
    outgoing: OutgoingMessage | None = None,
) -> Sink:
    """Send one message as the case says and check what came of it. ``gateway`` is the
    provider's fake (``tests.fake_gateway``), reset and given the case's faults first; the
    provider is sent there (``FakeGateway.where``) unless the case says otherwise."""
    configure_logging("DEBUG", "json")
    if gateway is not None:
        gateway.reset()
        if case.faults:
            gateway.faults(*case.faults)
    sink = Sink()
    settings = case.settings if gateway is None else {**gateway.where, **case.settings}
    provider = providers.create("under-test", settings, receipt_sink=sink)
    outgoing = outgoing or message()
    try:
        result = send(provider, outgoing)  # closed on the loop it sent on
    except Exception as exc:  # classified below, as the worker does
        error: SendError = provider.classify(exc)
        assert case.kind is not None, f"{case.name}: unexpected {error}"
        assert (error.kind, error.code) == (case.kind, case.code or error.code), case.name
        assert error.provider_wide == case.provider_wide, f"{case.name}: provider_wide"
        assert error.retry_after == case.retry_after, f"{case.name}: Retry-After"
        assert error.throttled == case.throttled, f"{case.name}: throttled"
        assert error.campaign_wide == case.campaign_wide, f"{case.name}: campaign-wide"
    else:
        assert case.kind is None, f"{case.name}: expected {case.kind}, the send succeeded"
        assert result.provider_message_id
    logged = capsys.readouterr().err
    for secret in _secrets(case.settings, secret_fields):
        assert secret not in logged, f"{case.name}: a secret reached the logs"
    assert TO not in logged and TO[1:] not in logged, f"{case.name}: a whole number was logged"
    return sink


def check_receipt(case: ReceiptCase, settings: dict[str, Any] | None = None) -> None:
    provider = providers.create("under-test", settings or {"type": "sandbox"})
    if case.invalid:
        with pytest.raises(ValueError):
            provider.parse_receipt(case.payload)
        return
    receipt = provider.parse_receipt(case.payload)
    assert receipt.status == case.status, case.name
    assert receipt.code == case.code, case.name


def check_proof(case: ProofCase) -> None:
    """The provider's ``authenticate`` says what the case expects (the webhook answers 403
    and stores nothing when it refuses)."""
    provider = providers.create("under-test", case.settings)
    assert provider.authenticate(case.request) is case.accepted, case.name
