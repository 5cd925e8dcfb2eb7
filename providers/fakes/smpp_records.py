"""What the fake SMSC (``providers.fakes.smpp``) records and how it is scripted: each
submit_sm as read (``Submit``: its concatenation and text, decoded here, independently of
the code that built it), each answer an ESME gave (``Answer``), the rules (``Rule``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.smpp import pdu as codec
from providers.smpp.pdu import Pdu

#: receipt ``stat`` -> message_state TLV (SMPP 3.4, 5.2.28).
STATES = {"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5}
STATES |= {"ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = dict(zip(b"\x0a\x14\x28\x29\x2f\x3c\x3d\x3e\x40\x65", "\f^{}\\[~]|€", strict=True))


def gsm_decode(septets: bytes) -> str:
    """GSM 03.38, one septet per octet (what data_coding 0 carries over SMPP)."""
    out, escaped = [], False
    for octet in septets:
        if escaped:
            out.append(GSM_EXTENSION.get(octet, " "))
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            out.append(GSM_BASIC[octet & 0x7F])
    return "".join(out)


#: What a rule does (at least one is needed); the other keys say when it applies.
_BEHAVIOURS = frozenset({"status", "nack", "answer_as", "message_id", "delay", "hold", "drop"})
#: Every key a rule may have, for ``--help``.
RULE_HELP = (
    "a JSON list of rules, each an object with what to do: status (answer this "
    'command_status, e.g. "0x58"), nack (a generic_nack with this status), delay '
    "(seconds before answering), hold (never answer until POST /_fake/release), drop "
    "(close the connection), answer_as (another command's response), message_id (accept "
    "with this id); and when: destination (ends with), sequence, after (submit_sm seen "
    "first), times (how many; default for ever). The first rule that matches wins; POST "
    "/_fake/reset forgets them"
)
#: The rule keys whose values are text, not numbers.
_TEXT_KEYS = frozenset({"destination", "answer_as", "message_id"})


@dataclass
class Rule:
    """One scripted behaviour for submit_sm: an answer (``status``; ``nack``: a
    generic_nack; ``answer_as``: another command's response under the submit_sm's number,
    as a broken SMSC might; ``message_id``: accepted with this id, "" or longer than SMPP
    allows), when (``delay`` seconds; ``hold``: never, until ``release``), or ``drop``
    (close the connection instead of answering). It applies to submit_sm whose
    destination ends with ``destination`` and whose sequence is ``sequence`` (when set),
    once ``after`` submit_sm have arrived, for ``times`` of them (None: for ever)."""

    status: int | None = None
    nack: int | None = None
    answer_as: str | None = None
    message_id: str | None = None
    delay: float = 0.0
    hold: bool = False
    drop: bool = False
    destination: str | None = None
    sequence: int | None = None
    after: int = 0
    times: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        """From JSON (the command line and control endpoint); statuses may be "0x58"."""
        known = set(cls.__dataclass_fields__)
        if set(raw) - known:
            raise ValueError(f"unknown rule keys: {', '.join(sorted(set(raw) - known))}")
        values = {
            k: int(v, 0) if isinstance(v, str) and k not in _TEXT_KEYS else v
            for k, v in raw.items()
        }
        if not set(values) & _BEHAVIOURS:
            # A rule that does nothing matches every submit_sm and, the first match
            # winning, would silently hide every rule added after it.
            raise ValueError(f"a rule needs one of: {', '.join(sorted(_BEHAVIOURS))}")
        return cls(**values)

    def applies(self, submit: Submit, arrived_before: int) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if arrived_before < self.after:
            return False
        if self.sequence is not None and submit.pdu.sequence != self.sequence:
            return False
        return self.destination is None or submit.destination.endswith(self.destination)


@dataclass
class Submit:
    """One submit_sm as the SMSC read it, and what it answered (``outcome``: the status
    as ``0x…``, ``nack 0x…``, ``held``, ``dropped``)."""

    pdu: Pdu
    arrived: float
    connection: int
    outcome: str = ""
    message_id: str | None = None
    number: int | None = None  # the id as a number, before it was written hex or decimal

    @property
    def destination(self) -> str:
        return self.pdu.text("destination_addr") or ""

    @property
    def payload(self) -> bytes:
        """The user data: message_payload when sent so, else short_message."""
        return self.pdu.octets("message_payload") or self.pdu.short_message

    @property
    def udh(self) -> bytes:
        data = self.payload
        if not (self.pdu.number("esm_class") or 0) & codec.ESM_UDHI or not data:
            return b""
        return data[: data[0] + 1]

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, total, part number) from the UDH (8- or 16-bit reference) or the
        SAR TLVs; None for a message sent whole."""
        udh, i = self.udh, 1
        while i + 1 < len(udh):
            iei, size, data = udh[i], udh[i + 1], udh[i + 2 : i + 2 + udh[i + 1]]
            if iei == 0x00 and size == 3:
                return data[0], data[1], data[2]
            if iei == 0x08 and size == 4:
                return data[0] << 8 | data[1], data[2], data[3]
            i += 2 + size
        ref = self.pdu.number("sar_msg_ref_num")
        if ref is None:
            return None
        return (
            ref,
            self.pdu.number("sar_total_segments") or 0,
            self.pdu.number("sar_segment_seqnum") or 0,
        )

    @property
    def text(self) -> str:
        data, coding = self.payload[len(self.udh) :], self.pdu.number("data_coding") or 0
        if coding == 0x08:
            return data.decode("utf-16-be", "replace")
        return gsm_decode(data) if coding == 0x00 else data.decode("latin-1")


@dataclass(frozen=True)
class Answer:
    """The ESME's answer to a request the SMSC sent, ``delay`` seconds after it."""

    command: str
    sequence: int
    status: int
    delay: float
    message_id: str | None  # the receipt's id, None for a handset message
