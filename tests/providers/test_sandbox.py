import pytest

import providers
from campaigns.status import Status
from providers import ErrorKind
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

QUIET = {
    "type": "sandbox",
    "latency_ms": 0,
    "retryable_rate": 0,
    "permanent_rate": 0,
    "ambiguous_rate": 0,
}

SEND_CASES = [
    SendCase("accepted", QUIET, None),
    SendCase("throttled", {**QUIET, "retryable_rate": 1}, ErrorKind.RETRYABLE, "0x58"),
    SendCase("invalid destination", {**QUIET, "permanent_rate": 1}, ErrorKind.PERMANENT, "0x0B"),
    SendCase("read timeout", {**QUIET, "ambiguous_rate": 1}, ErrorKind.AMBIGUOUS, "read_timeout"),
    SendCase("credentials refused", {**QUIET, "halt_rate": 1}, ErrorKind.HALT, "0x0E"),
]

RECEIPT_CASES = [
    ReceiptCase(
        "delivered", {"id": "SB1", "stat": "DELIVRD", "err": "000"}, Status.DELIVERED, "000"
    ),
    ReceiptCase(
        "undelivered", {"id": "SB1", "stat": "UNDELIV", "err": "001"}, Status.UNDELIVERED, "001"
    ),
    ReceiptCase("expired", {"id": "SB1", "stat": "EXPIRED"}, Status.EXPIRED),
    ReceiptCase("rejected", {"id": "SB1", "stat": "REJECTD"}, Status.FAILED),
    ReceiptCase("unmapped", {"id": "SB1", "stat": "ENROUTE"}, None),
    ReceiptCase("no id", {"stat": "DELIVRD"}, None, invalid=True),
]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("case", SEND_CASES, ids=lambda c: c.name)
def test_send(case, capsys):
    check_send(case, capsys)


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=lambda c: c.name)
def test_receipt(case):
    check_receipt(case)


def test_an_accepted_message_gets_a_receipt_that_parses(capsys):
    sink = check_send(SendCase("accepted", QUIET, None), capsys)
    ((payload, delay),) = sink.receipts
    receipt = providers.create("x", QUIET).parse_receipt(payload)
    assert receipt.status in (Status.DELIVERED, Status.UNDELIVERED)
    assert 0.2 <= delay <= 1.5


def test_outcomes_depend_only_on_seed_message_and_attempt():
    settings = {**QUIET, "retryable_rate": 0.5}
    first = providers.create("a", settings)
    second = providers.create("b", settings)

    def outcomes(provider, ids):
        result = {}
        for i in ids:
            try:
                result[i] = send(provider, message(i)).provider_message_id
            except providers.SendError as exc:
                result[i] = exc.kind
        return result

    ids = list(range(1, 60))
    assert outcomes(first, ids) == outcomes(second, list(reversed(ids)))
    kinds = set(outcomes(first, ids).values())
    assert ErrorKind.RETRYABLE in kinds and len(kinds) > 2  # both outcomes happen


def test_rates_that_add_up_to_more_than_one_are_refused():
    with pytest.raises(providers.ProviderConfigError, match="add up"):
        providers.create("x", {**QUIET, "retryable_rate": 0.7, "permanent_rate": 0.7})


def test_unknown_type_and_field_are_named():
    with pytest.raises(providers.ProviderConfigError, match="unknown type 'smoke'"):
        providers.create("x", {"type": "smoke"})
    with pytest.raises(providers.ProviderConfigError, match="latency_sm"):
        providers.create("x", {"type": "sandbox", "latency_sm": 3})


PROOF_CASES = [
    ProofCase("from this machine", QUIET, inbound(query={"id": "S1", "stat": "DELIVRD"}), True),
    ProofCase("over IPv6 loopback", QUIET, inbound(client="::1"), True),
    ProofCase("from elsewhere", QUIET, inbound(client="198.51.100.7"), False),
    ProofCase("no address at all", QUIET, inbound(client=""), False),
    # Relayed by a reverse proxy on this machine: the peer is the loopback, the caller not.
    *(
        ProofCase(f"relayed ({name})", QUIET, inbound(headers={name: "203.0.113.9"}), False)
        for name in ("x-forwarded-for", "forwarded", "x-real-ip")
    ),
]


@pytest.mark.parametrize("case", PROOF_CASES, ids=lambda c: c.name)
def test_proof(case):
    check_proof(case)


def test_codes_are_described_for_reports():
    provider = providers.create("s", QUIET)
    assert provider.describe("0x0B").startswith("ESME_RINVDSTADR")
    assert provider.describe("0x99") is None
