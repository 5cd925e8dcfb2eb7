"""The PDU layer (``providers.smpp.pdu``): what smpplib would silently truncate or drop is
refused before encoding, and what smpplib would misread is caught when decoding. The
bytes decoded here are built by hand from SMPP 3.4's layout, not by the code under test."""

from __future__ import annotations

import struct

import pytest

from providers.smpp.errors import MalformedPdu, PduError, UnknownCommand
from providers.smpp.pdu import decode, encode

# (command, field, longest SMPP 3.4 allows, other fields the PDU needs)
LIMITS = [
    ("bind_transceiver", "system_id", 15, {}),
    ("bind_transceiver", "password", 8, {}),
    ("bind_transceiver", "system_type", 12, {}),
    ("submit_sm", "source_addr", 20, {"source_addr_ton": 1}),
    ("submit_sm", "source_addr", 11, {"source_addr_ton": 5}),  # a brandname
]


@pytest.mark.parametrize("command, field, longest, others", LIMITS)
def test_a_c_string_longer_than_smpp_allows_is_refused_not_truncated(
    command, field, longest, others
):
    value = "A1b2C3d4E5f6G7h8I9j0K"[:longest]
    taken = decode(encode(command, 5, **others, **{field: value}))
    assert taken.text(field) == value
    with pytest.raises(PduError, match=field):
        encode(command, 5, **others, **{field: value + "Z"})


def test_short_message_holds_254_octets_at_most():
    assert decode(encode("submit_sm", 1, short_message=b"x" * 254)).short_message == b"x" * 254
    with pytest.raises(PduError, match="short_message"):
        encode("submit_sm", 1, short_message=b"x" * 255)


@pytest.mark.parametrize(
    "fields",
    [
        {"source_addr": "Ninh\0Thuan"},  # a NUL would end the field early and shift the rest
        {"source_addr": "NinhThuận"},  # not ASCII
        {"sar_msg_ref": 7},  # misspelt: smpplib would drop it
        {"sar_total_segments": 256},  # one octet
        {"short_message": "text, not bytes"},
        {"short_message": b"x", "message_payload": b"y"},
    ],
)
def test_what_smpplib_would_mangle_is_refused(fields):
    with pytest.raises(PduError):
        encode("submit_sm", 1, **fields)


def test_make_pdus_sequence_is_the_one_given():
    raw = encode("enquire_link", 0x7FFFFFFF)
    assert raw == struct.pack(">IIII", 16, 0x15, 0, 0x7FFFFFFF)


def _pdu(command_id: int, sequence: int, body: bytes, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def _deliver_sm_body(tlvs: bytes) -> bytes:
    """deliver_sm mandatory fields (SMPP 3.4, 4.6.1): a receipt from 84912345678."""
    fields = b"\0" + b"\x01\x01" + b"84912345678\0" + b"\x05\x00" + b"NinhThuan\0"
    fields += bytes([0x04, 0, 0]) + b"\0\0" + bytes([0, 0, 0, 0])
    return fields + b"\x05" + b"id:7F" + tlvs


def test_a_receipted_message_id_without_its_nul_is_read_whole():
    # Some SMSCs send the C-string TLV without its NUL; smpplib would drop the last "F".
    tlvs = struct.pack(">HH", 0x001E, 4) + b"7A3F" + struct.pack(">HHB", 0x0427, 1, 2)
    tlvs += struct.pack(">HH", 0x1401, 2) + b"\x12\x34"  # a vendor TLV
    receipt = decode(_pdu(0x05, 9, _deliver_sm_body(tlvs)))
    assert receipt.is_receipt and receipt.sequence == 9
    assert receipt.text("receipted_message_id") == "7A3F"
    assert receipt.number("message_state") == 2
    assert receipt.tlvs[0x1401] == b"\x12\x34"
    assert receipt.text("source_addr") == "84912345678" and receipt.short_message == b"id:7F"


def test_a_c_string_without_its_nul_is_malformed():
    body = b"\0\x01\x01" + b"84912"  # source_addr never ends
    with pytest.raises(MalformedPdu) as caught:
        decode(_pdu(0x05, 4, body))
    assert (caught.value.command_id, caught.value.sequence) == (0x05, 4)


def test_a_tlv_running_past_the_end_is_malformed():
    tlvs = struct.pack(">HH", 0x001E, 9) + b"7A3F"
    with pytest.raises(MalformedPdu, match="0x001E"):
        decode(_pdu(0x05, 4, _deliver_sm_body(tlvs)))


def test_an_unknown_command_is_named_with_its_sequence():
    with pytest.raises(UnknownCommand) as caught:
        decode(_pdu(0x00000099, 12, b""))
    assert (caught.value.command_id, caught.value.sequence) == (0x99, 12)


def test_a_length_that_is_not_the_pdus_is_malformed():
    raw = _pdu(0x80000004, 3, b"1A\0")
    with pytest.raises(MalformedPdu):
        decode(raw[:-1])


def test_an_error_response_without_a_body_is_read():
    throttled = decode(_pdu(0x80000004, 3, b"", status=0x58))
    assert (throttled.command, throttled.status, throttled.message_id) == (
        "submit_sm_resp",
        0x58,
        None,
    )


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x0425, b"\x02"),  # delivery_failure_reason
        (0x001D, b"Subscriber absent\0"),  # additional_status_info_text
        (0x0420, b"\x00"),  # dpf_result
        (0x0030, b"\x00"),  # ms_msg_wait_facilities
    ],
    ids=["delivery_failure_reason", "additional_status_info_text", "dpf_result", "msg_wait"],
)
def test_a_receipt_with_a_standard_tlv_smpplib_does_not_expect_is_read(tag, value):
    """SMPP 3.4 allows these on deliver_sm; smpplib's class for it does not list them and
    raised KeyError, so the receipt was answered 'rejected for good' and lost."""
    tlvs = struct.pack(">HH", 0x001E, 5) + b"7A3F\0" + struct.pack(">HHB", 0x0427, 1, 2)
    tlvs += struct.pack(">HH", tag, len(value)) + value
    receipt = decode(_pdu(0x05, 9, _deliver_sm_body(tlvs)))
    assert receipt.text("receipted_message_id") == "7A3F" and receipt.number("message_state") == 2
    assert receipt.tlvs[tag] == value


def test_a_submit_sm_resp_with_a_status_text_tlv_keeps_its_status():
    body = struct.pack(">HH", 0x001D, 8) + b"Barred!\0"
    answer = decode(_pdu(0x80000004, 3, b"\0" + body, status=0x0B))  # message_id NULL
    assert (answer.status, answer.message_id) == (0x0B, None)
    accepted = decode(_pdu(0x80000004, 4, b"AB12\0" + body))
    assert accepted.message_id == "AB12"


def test_a_message_id_longer_than_smpp_allows_is_read_whole():
    """Refused, every message of such an SMSC became unknown; read, it is kept as its
    digest (``receipts.canonical_id``), the same on both sides."""
    long_id = "9" * 70
    assert decode(_pdu(0x80000004, 5, long_id.encode() + b"\0")).message_id == long_id
    with pytest.raises(MalformedPdu, match="at most 255"):
        decode(_pdu(0x80000004, 6, b"9" * 256 + b"\0"))
