"""The ``smpp`` provider through the shared harness: each command_status the local SMSC
(``providers.fakes.smpp``, a process speaking SMPP over TCP) answers, classified as the
worker needs it; receipts in both of their forms; the settings SMPP cannot carry."""

from __future__ import annotations

import pytest

import providers
from campaigns.status import Status
from providers import ErrorKind, ProviderConfigError
from tests.fake_gateway import fake_gateway
from tests.providers.harness import (
    ReceiptCase,
    SendCase,
    check_receipt,
    check_send,
    no_network,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.usefixtures("no_network")

SETTINGS = {
    "type": "smpp",
    "system_id": "loa",
    "password": "secret",
    "response_timeout": 1.0,
    "reconnect_min": 0.05,
    "enquire_link_interval": 0,
}


def rule(**fields) -> tuple[dict, ...]:
    return ({"times": 1, **fields},)


SENDS = [
    SendCase("accepted", SETTINGS, None),
    SendCase(
        "throttled: the rate is lowered, not the message failed",
        SETTINGS,
        ErrorKind.RETRYABLE,
        "0x58",
        rule(status="0x58"),
        provider_wide=True,
        throttled=True,
    ),
    SendCase(
        "queue full: the provider pauses",
        SETTINGS,
        ErrorKind.RETRYABLE,
        "0x14",
        rule(status="0x14"),
        provider_wide=True,
    ),
    SendCase(
        "the SMSC's own system error pauses too",
        SETTINGS,
        ErrorKind.RETRYABLE,
        "0x08",
        rule(status="0x08"),
        provider_wide=True,
    ),
    SendCase("invalid destination", SETTINGS, ErrorKind.PERMANENT, "0x0B", rule(status="0x0B")),
    SendCase(
        "a vendor's code no table lists",
        SETTINGS,
        ErrorKind.PERMANENT,
        "0x00000401",
        rule(status="0x401"),
    ),
    SendCase(
        "an invalid source TON halts, naming the setting",
        SETTINGS,
        ErrorKind.HALT,
        "0x48",
        rule(status="0x48"),
    ),
    SendCase(
        "generic_nack: not read, so not accepted",
        SETTINGS,
        ErrorKind.RETRYABLE,
        "generic_nack",
        rule(nack="0x08"),
    ),
    SendCase(
        "no submit_sm_resp: fate unknown, never resent",
        SETTINGS,
        ErrorKind.AMBIGUOUS,
        "no_answer",
        rule(hold=True),
    ),
    SendCase(
        "the connection dropped with the request in flight: fate unknown",
        SETTINGS,
        ErrorKind.AMBIGUOUS,
        "no_answer",
        rule(drop=True),
    ),
    SendCase(
        "accepted without a message_id: its receipt could never be matched",
        SETTINGS,
        ErrorKind.AMBIGUOUS,
        "no_message_id",
        rule(message_id=""),
    ),
    SendCase(
        "accepted with an id longer than SMPP allows: taken, kept as its digest",
        SETTINGS,
        None,
        faults=rule(message_id="9" * 70),
    ),
    SendCase(
        "answered by another command's response: fate unknown",
        SETTINGS,
        ErrorKind.AMBIGUOUS,
        "bad_answer",
        rule(answer_as="deliver_sm_resp"),
    ),
    SendCase(
        "a wrong password halts the provider",
        {**SETTINGS, "password": "wrong"},
        ErrorKind.HALT,
        "bind_0x0E",
    ),
    SendCase(
        "a wrong system_id halts the provider",
        {**SETTINGS, "system_id": "nobody"},
        ErrorKind.HALT,
        "bind_0x0F",
    ),
]


@pytest.fixture(scope="module")
def smsc():
    with fake_gateway("providers.fakes.smpp") as gateway:
        yield gateway


@pytest.mark.parametrize("case", SENDS, ids=lambda c: c.name)
def test_send(case, smsc, capsys):
    check_send(case, capsys, secret_fields=("password",), gateway=smsc)


def test_an_smsc_nobody_answers_at_is_a_pause_with_nothing_sent(capsys):
    from tests.rig import free_port

    unreachable = {**SETTINGS, "host": "127.0.0.1", "port": free_port(), "response_timeout": 0.3}
    case = SendCase(
        "unreachable", unreachable, ErrorKind.RETRYABLE, "not_bound", provider_wide=True
    )
    check_send(case, capsys, secret_fields=("password",))


def receipt_text(stat: str, err: str = "000", rid: str = "1A2B3C") -> str:
    return (
        f"id:{rid} sub:001 dlvrd:001 submit date:2008201030 done date:2008201031 "
        f"stat:{stat} err:{err} text:Cai Bluezone"
    )


RECEIPT = {"type": "smpp", "host": "127.0.0.1", "system_id": "loa", "password": "secret"}
RECEIPTS = [
    ReceiptCase("text: delivered", {"short_message": receipt_text("DELIVRD")}, Status.DELIVERED),
    ReceiptCase(
        "text: undeliverable, with its error",
        {"short_message": receipt_text("UNDELIV", "001")},
        Status.UNDELIVERED,
        "001",
    ),
    ReceiptCase("text: expired", {"short_message": receipt_text("EXPIRED")}, Status.EXPIRED),
    ReceiptCase("text: rejected", {"short_message": receipt_text("REJECTD")}, Status.FAILED),
    ReceiptCase("text: deleted", {"short_message": receipt_text("DELETED")}, Status.FAILED),
    ReceiptCase(
        "text: accepted, nothing final", {"short_message": receipt_text("ACCEPTD")}, Status.SENT
    ),
    ReceiptCase(
        "text: the SMSC does not know", {"short_message": receipt_text("UNKNOWN")}, Status.UNKNOWN
    ),
    ReceiptCase("text: a stat no table lists", {"short_message": receipt_text("WEIRD")}, None),
    ReceiptCase(
        "TLVs win over the text",
        {
            "short_message": receipt_text("UNDELIV"),
            "receipted_message_id": "1A2B3C",
            "message_state": "2",
        },
        Status.DELIVERED,
    ),
    ReceiptCase(
        "TLVs alone",
        {"short_message": "", "receipted_message_id": "77", "message_state": "5"},
        Status.UNDELIVERED,
    ),
    ReceiptCase(
        "a network error code when the text has none",
        {"receipted_message_id": "77", "message_state": "5", "network_error_code": "030001"},
        Status.UNDELIVERED,
        "030001",
    ),
    ReceiptCase("no id anywhere", {"short_message": "stat:DELIVRD err:000"}, None, invalid=True),
    ReceiptCase("no state anywhere", {"short_message": "id:1A2B3C sub:001"}, None, invalid=True),
    ReceiptCase("a handset's words", {"short_message": "Xin chao"}, None, invalid=True),
]


@pytest.mark.parametrize("case", RECEIPTS, ids=lambda c: c.name)
def test_receipt(case):
    check_receipt(case, RECEIPT)


@pytest.mark.parametrize(
    ("receipt_ids", "submitted", "in_receipt", "kept"),
    [
        ("same", "1A2B3C", "1A2B3C", "1A2B3C"),
        # submit_sm_resp in hex, receipts in decimal: both kept in decimal
        ("decimal", "1A2B3C", "1715004", "1715004"),
        ("decimal", "001a2b3c", "1715004", "1715004"),
        # submit_sm_resp in decimal, receipts in hex (any case, leading zeros)
        ("hex", "1715004", "001A2B3C", "1a2b3c"),
    ],
)
def test_receipt_ids_meet_the_ids_sends_kept(receipt_ids, submitted, in_receipt, kept):
    from providers.smpp.receipts import canonical_id

    provider = providers.create("under-test", {**RECEIPT, "receipt_ids": receipt_ids})
    receipt = provider.parse_receipt({"short_message": receipt_text("DELIVRD", rid=in_receipt)})
    assert receipt.provider_message_id == kept
    assert canonical_id(submitted, receipt_ids, in_receipt=False) == kept


def test_an_id_longer_than_smpp_allows_is_kept_whole_in_a_digest_not_cut():
    """Cut to 64 characters, a receipt for ``X…X1`` matched the message sent as ``X…X``
    (64 of them). Kept as 40 characters, ``#`` and a digest, it matches only its own,
    on both sides alike."""
    from providers.smpp.receipts import canonical_id

    provider = providers.create("under-test", RECEIPT)
    longer = "X" * 64 + "1"
    receipt = provider.parse_receipt({"receipted_message_id": longer, "message_state": "2"})
    kept = receipt.provider_message_id
    assert len(kept) == 64 and kept.startswith("X" * 40 + "#") and kept != "X" * 64
    assert kept == canonical_id(longer, "same", in_receipt=False)  # as the send keeps it
    assert canonical_id("X" * 64 + "2", "same", in_receipt=False) != kept
    assert canonical_id("X" * 64, "same", in_receipt=True) == "X" * 64  # within: as given


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("password", "nine-char", "at most 8"),
        ("password", "", "empty"),
        ("system_id", "a-system-id-of-16", "at most 15"),
        ("system_type", "thirteen-char", "at most 12"),
        ("host", "", "at least 1"),
        ("concatenation", "udh32", "udh8"),
        ("gsm_data_coding", 8, "0, 1 or 3"),
    ],
)
def test_settings_smpp_cannot_carry_are_refused_naming_the_field(field, value, said):
    with pytest.raises(ProviderConfigError) as refused:
        providers.validate_config("carrier", {**RECEIPT, field: value})
    assert refused.value.problems[0][0] == field
    assert said in refused.value.problems[0][1]


def test_a_missing_host_or_credential_is_named():
    with pytest.raises(ProviderConfigError) as refused:
        providers.validate_config("carrier", {"type": "smpp"})
    assert {field for field, _ in refused.value.problems} == {"host", "system_id", "password"}


@pytest.mark.parametrize(
    ("text", "rid", "status"),
    [
        # The message's own words, repeated after text:, never stand for the receipt's.
        (
            receipt_text("UNDELIV").replace("Cai Bluezone", "Win stat:DELIVRD"),
            "1A2B3C",
            Status.UNDELIVERED,
        ),
        (
            receipt_text("DELIVRD").replace("Cai Bluezone", "Ma ID: 2024"),
            "1A2B3C",
            Status.DELIVERED,
        ),
        (
            "id:77 sub:001 dlvrd:001 submit date:2008201030 done date:2008201031 stat:DELIVRD err:000 text:paid:5 id:9",
            "77",
            Status.DELIVERED,
        ),
    ],
)
def test_a_receipts_text_is_read_before_the_message_it_quotes(text, rid, status):
    receipt = providers.create("under-test", RECEIPT).parse_receipt({"short_message": text})
    assert (receipt.provider_message_id, receipt.status) == (rid, status)
