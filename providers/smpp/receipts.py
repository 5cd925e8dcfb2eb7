"""What a ``deliver_sm`` (or ``data_sm``) carries: a delivery receipt, or a message a
handset sent.

A receipt is read from the ``receipted_message_id`` and ``message_state`` TLVs when the
SMSC sends them (SMPP 3.4 §5.2.28), else from the receipt's text (Appendix B:
``id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…``). A PDU is first
turned into flat text fields (``fields_of``), the form ``Provider.parse_receipt`` takes
and a receipt's digest is computed from: the same receipt sent again (our answer was
lost) has the same fields, so it is stored once.

Ids: an SMSC may write the id in a receipt in decimal where its submit_sm_resp gave hex,
or the reverse. ``canonical_id`` writes both sides the same way (``receipt_ids``), so
they meet in the ledger.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from campaigns.status import Status
from providers.base import REPLACEMENT, HandsetMessage, Receipt, storable
from providers.smpp.config import Alphabet, ReceiptIds
from providers.smpp.parts import GSM_TABLE
from providers.smpp.pdu import Pdu
from providers.smpp.statuses import MESSAGE_STATES, RECEIPT_STATS

RECEIPTED_MESSAGE_ID, MESSAGE_STATE, NETWORK_ERROR_CODE, MESSAGE_PAYLOAD = (
    0x001E, 0x0427, 0x0423, 0x0424,
)  # fmt: skip
ESM_UDHI = 0x40
#: The longest address kept (``inbound_messages.source``; SMPP's are at most 20).
ADDRESS_LENGTH = 32

#: ``key:value`` pairs of a receipt's text; ``submit date`` and ``done date`` hold a
#: space, and ``text:`` runs to the end.
_PAIR = re.compile(r"(?<![^\s])(id|sub|dlvrd|submit date|done date|stat|err):\s*(\S*)", re.I)

#: Unpacked GSM 03.38 -> character: an octet, or 0x1B00 | octet after an escape.
_GSM_DECODE = {
    (octets[0] if len(octets) == 1 else 0x1B00 | octets[1]): chr(point)
    for point, octets in GSM_TABLE.items()
}


#: The longest id the ledger keeps (``messages.provider_message_id``); SMPP 3.4 allows
#: 64 characters (65 octets with the NUL), but an SMSC that writes more is not refused.
ID_LENGTH = 64
#: What a longer id keeps as it was, before its digest.
_ID_KEPT = 40


def canonical_id(raw: str, receipt_ids: ReceiptIds, in_receipt: bool) -> str:
    """An SMSC's message id written the one way both sides are kept.

    ``same``: as given. ``decimal``: submit_sm_resp gives hex and receipts decimal; both
    kept in decimal (``"1A2B"`` and ``"6699"`` -> ``"6699"``). ``hex``: the reverse; both
    kept as lowercase hex without leading zeros. An id that is not a number in the base
    expected is kept as given (it could not match either way; nothing is guessed).

    An id longer than ``ID_LENGTH`` (against SMPP 3.4) becomes its first 40 characters,
    ``#`` and 23 hex digits of its SHA-256: cut, two ids alike in their first 64 would
    have been one, and each receipt applied to whichever message came first.
    """
    if receipt_ids != "same":
        hex_side = (receipt_ids == "decimal") != in_receipt  # which side writes hex
        try:
            number = int(raw, 16 if hex_side else 10)
        except ValueError:
            pass
        else:
            raw = str(number) if receipt_ids == "decimal" else format(number, "x")
    if len(raw) <= ID_LENGTH:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{raw[:_ID_KEPT]}#{digest[: ID_LENGTH - _ID_KEPT - 1]}"


def fields_of(pdu: Pdu) -> dict[str, str]:
    """The text fields of a deliver_sm / data_sm, as ``parse_receipt`` reads them:
    ``short_message`` (Latin-1, every octet readable), ``esm_class``, ``data_coding``,
    ``source_addr``, ``destination_addr``, and the TLVs Loa reads (hex for octets)."""
    fields = {
        "command": pdu.command,
        "esm_class": str(pdu.number("esm_class") or 0),
        "data_coding": str(pdu.number("data_coding") or 0),
        "source_addr": pdu.text("source_addr") or "",
        "destination_addr": pdu.text("destination_addr") or "",
        "short_message": pdu.short_message.decode("latin-1"),
    }
    tlvs = pdu.tlvs
    if RECEIPTED_MESSAGE_ID in tlvs:
        fields["receipted_message_id"] = (
            tlvs[RECEIPTED_MESSAGE_ID].split(b"\0", 1)[0].decode("latin-1")
        )
    if MESSAGE_STATE in tlvs and len(tlvs[MESSAGE_STATE]) == 1:
        fields["message_state"] = str(tlvs[MESSAGE_STATE][0])
    if NETWORK_ERROR_CODE in tlvs:
        fields["network_error_code"] = tlvs[NETWORK_ERROR_CODE].hex()
    if MESSAGE_PAYLOAD in tlvs:
        fields["message_payload"] = tlvs[MESSAGE_PAYLOAD].hex()
    return fields


def parse(fields: Mapping[str, str], receipt_ids: ReceiptIds) -> Receipt:
    """A receipt in the common model, from ``fields_of``'s fields.

    The TLVs win over the text when both are there (they are the SMSC's own fields; the
    text is a human's convenience). ``raw_status`` is the ``stat`` word (or the
    message_state's name), ``code`` the ``err`` value or network error code when not zero.

    Raises:
        ValueError: no id, or no state, in either form (not a receipt).
    """
    text = fields.get("short_message", "")
    if not text and fields.get("message_payload"):
        text = bytes.fromhex(fields["message_payload"]).decode("latin-1")
    # The receipt's own fields come before ``text:``, which repeats the start of the
    # message: read only what precedes it, so "COVID id: 2024" or "stat:DELIVRD" written
    # in the message can never stand for the receipt's id or state.
    head = re.split(r"(?<![^\s])text:", text, maxsplit=1, flags=re.I)[0]
    pairs = {}
    for key, value in _PAIR.findall(head):
        pairs.setdefault(key.lower(), value)  # the first of each, never a later one
    receipt_id = fields.get("receipted_message_id") or pairs.get("id", "")
    if not receipt_id:
        raise ValueError("an SMPP receipt without a message id (no receipted_message_id, no id:)")
    state = fields.get("message_state")
    if state is not None and state.isdigit() and int(state) in MESSAGE_STATES:
        raw = MESSAGE_STATES[int(state)]
    elif "stat" in pairs:
        raw = pairs["stat"].upper()
    elif state is not None:
        raw = f"state:{state}"
    else:
        raise ValueError("an SMPP receipt without a state (no message_state, no stat:)")
    err = pairs.get("err") or fields.get("network_error_code")
    code = err if err and err.strip("0") else None
    status: Status | None = RECEIPT_STATS.get(raw)
    return Receipt(
        provider_message_id=canonical_id(receipt_id, receipt_ids, in_receipt=True),
        status=status,
        raw_status=raw,
        code=code,
    )


def decode_text(octets: bytes, data_coding: int, alphabet: Alphabet) -> str:
    """A handset message's text from its octets and data_coding (unknown codings read
    as Latin-1: kept readable rather than lost)."""
    if data_coding == 0x08:
        return octets.decode("utf-16-be", "replace")
    if data_coding == 0x00 and alphabet == "gsm":
        out, escape = [], False
        for octet in octets:
            if octet == 0x1B and not escape:
                escape = True
                continue
            key = 0x1B00 | octet if escape else octet
            out.append(_GSM_DECODE.get(key, "\ufffd"))
            escape = False
        return "".join(out)
    if data_coding == 0x01 or (data_coding == 0x00 and alphabet == "ascii"):
        return octets.decode("ascii", "replace")
    return octets.decode("latin-1")


def handset_message(pdu: Pdu, fields: Mapping[str, str], alphabet: Alphabet) -> HandsetMessage:
    """A deliver_sm without the receipt bit, as a handset's message (its user data header,
    if any, taken off: each part of a long one is kept as it came)."""
    octets = pdu.short_message or pdu.tlvs.get(MESSAGE_PAYLOAD, b"")
    if (pdu.number("esm_class") or 0) & ESM_UDHI and octets:
        octets = octets[1 + octets[0] :]
    coding = pdu.number("data_coding") or 0
    # A NUL is refused by PostgreSQL's text; line breaks are the handset's own.
    text = decode_text(octets, coding, alphabet).replace("\0", REPLACEMENT)
    return HandsetMessage(
        source=storable(pdu.text("source_addr") or "", ADDRESS_LENGTH),
        destination=storable(pdu.text("destination_addr") or "", ADDRESS_LENGTH),
        text=text,
        fields=dict(fields),
    )
