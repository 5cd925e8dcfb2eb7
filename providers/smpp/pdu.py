"""SMPP 3.4 PDUs through smpplib's codec, with the checks smpplib does not make.

smpplib (2.2.4) encodes and decodes every PDU Loa needs, but it is written for its own
synchronous client and trusts its caller: a ``system_id``, ``password`` or ``source_addr``
too long is cut short without a word, a NUL inside a C-string shifts every later field, a
misspelt field name is dropped, and ``sequence=`` is ignored by ``make_pdu``. So
``encode`` refuses what SMPP 3.4 does not allow (``PduError``) before smpplib sees it, and
``decode`` checks what smpplib parsed against the bytes (a C-string that is not
NUL-terminated is garbage to smpplib) and reads the TLVs itself: smpplib skips the ones it
does not know and cuts the last character of a C-string TLV sent without its NUL (some
SMSCs send ``receipted_message_id`` so, and a receipt would then never match).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import smpplib.command_codes
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
from smpplib.ptypes import flag, ostr

from providers.smpp.errors import MalformedPdu, PduError, UnknownCommand

# smpplib logs a warning for every TLV it does not know (vendor TLVs in every receipt of
# some SMSCs: thousands a second); Loa reads every TLV itself (``Pdu.tlvs``).
logging.getLogger("smpplib.command").setLevel(logging.ERROR)

HEADER = struct.Struct(">IIII")
#: A message_payload may hold 64 KiB; anything longer is not an SMPP peer talking.
MAX_PDU_LENGTH = 70_000
MAX_SEQUENCE = 0x7FFFFFFF
RESPONSE = 0x80000000

# Command statuses Loa itself answers with.
ESME_ROK = 0x00
ESME_RINVCMDID = 0x03  # invalid command id: a request we cannot read the kind of
ESME_RSYSERR = 0x08  # system error: the SMSC keeps the message and sends it again
ESME_RTHROTTLED = 0x58  # throttled: sent faster than it can be taken, send it more slowly
ESME_RX_T_APPN = 0x64  # temporary application error: nobody took it, send again later
ESME_RX_P_APPN = 0x65  # permanent application error: rejected, do not send it again

ESM_UDHI = 0x40  # short_message starts with a user data header
ESM_TYPE_MASK = 0x3C  # the message type bits of esm_class
ESM_RECEIPT = 0x04  # ... saying: an SMSC delivery receipt
ALPHANUMERIC_TON = 5
ALPHANUMERIC_MAX = 11  # a brandname sender, as handsets show it
TLV_MAX = 0xFFFF  # a TLV's length field is two octets
LONGEST_ID = 255  # a message_id read, however long SMPP 3.4 says it may be (64)

_CODES: dict[str, int] = dict(smpplib.command_codes.commands)
_NAMES: dict[int, str] = {code: name for name, code in _CODES.items()}
_TLV_NAMES: dict[int, str] = {code: name for name, code in smpplib.consts.OPTIONAL_PARAMS.items()}


class _Context:
    """What smpplib's PDUs ask of a "client" when made: a sequence number. Loa numbers
    its own requests (``session.Bind``) and sets it afterwards."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_CONTEXT = _Context()


def _makes(name: str) -> bool:
    try:
        smpplib.smpp.make_pdu(name, client=_CONTEXT)
    except smpplib.exceptions.UnknownCommandError:
        return False
    return True


#: The commands smpplib has a class for (not replace_sm, cancel_sm, submit_multi, outbind).
COMMANDS = frozenset(name for name in _CODES if _makes(name))


def command_name(command_id: int) -> str | None:
    """The command's name for ``command_id`` (``deliver_sm``, ``submit_sm_resp`` …), or
    None for one SMPP 3.4 does not define."""
    return _NAMES.get(command_id)


@dataclass(frozen=True, slots=True)
class Pdu:
    """One decoded PDU. ``values`` holds the fields present, by smpplib's names: C-strings
    and octet strings as bytes, integers as int; ``tlvs`` every TLV by tag, raw, also
    those smpplib does not know."""

    command: str
    command_id: int
    status: int
    sequence: int
    values: Mapping[str, Any]
    tlvs: Mapping[int, bytes]

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE)

    def text(self, name: str) -> str | None:
        """A C-string field as text (Latin-1: every octet reads as something)."""
        value = self.values.get(name)
        return None if value is None else bytes(value).decode("latin-1")

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        return None if value is None else int(value)

    def octets(self, name: str) -> bytes | None:
        value = self.values.get(name)
        return None if value is None else bytes(value)

    @property
    def message_id(self) -> str | None:
        """The id an SMSC gave in submit_sm_resp / data_sm_resp (None when empty)."""
        return self.text("message_id") or None

    @property
    def is_receipt(self) -> bool:
        """A deliver_sm / data_sm carrying a delivery receipt (esm_class type bits 0x04)."""
        return (self.number("esm_class") or 0) & ESM_TYPE_MASK == ESM_RECEIPT

    @property
    def short_message(self) -> bytes:
        return self.octets("short_message") or b""


def encode(name: str, sequence: int, status: int = 0, **fields: Any) -> bytes:
    """The bytes of one PDU, every field checked first.

    Parameters:
        name: smpplib's command name (``submit_sm``, ``deliver_sm_resp`` …).
        sequence: its sequence number (0..0x7FFFFFFF).
        status: its command_status (responses; 0 for requests).
        fields: smpplib's field names; C-strings as ``str`` (ASCII), octet strings as
            ``bytes``, integers as ``int``; ``None`` means absent. ``sm_length`` is
            computed.

    Returns:
        The PDU, header included.

    Raises:
        PduError: an unknown command or field, or a value SMPP 3.4 does not allow.
    """
    if name not in COMMANDS:
        raise PduError(f"smpplib cannot encode {name!r}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise PduError(f"sequence {sequence} is outside 0..0x7FFFFFFF")
    if not 0 <= status <= 0xFFFFFFFF:
        raise PduError(f"command_status {status} does not fit four octets")
    pdu = smpplib.smpp.make_pdu(name, client=_CONTEXT)
    for field, value in fields.items():
        if value is None:
            continue
        setattr(pdu, field, _checked(pdu, name, field, value))
    _check_message(name, fields)
    pdu.sequence = sequence  # make_pdu ignores sequence= (it keeps the client's)
    pdu.status = status
    try:
        return pdu.generate()
    except (struct.error, ValueError, TypeError) as exc:  # a case the checks above missed
        raise PduError(f"{name}: {exc}") from exc


def _checked(pdu: Any, command: str, field: str, value: Any) -> Any:
    """``value`` for ``field`` as smpplib wants it, or ``PduError``."""
    param = pdu.params.get(field)
    if param is None or field == "sm_length":
        raise PduError(f"{command} has no field {field!r} Loa may set")
    where = f"{command}.{field}"
    if param.type is flag:
        raise PduError(f"{where}: smpplib cannot encode flag TLVs")
    if param.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PduError(f"{where} must be an integer")
        if not 0 <= value < 256**param.size:
            raise PduError(f"{where} = {value} does not fit {param.size} octet(s)")
        return value
    if param.type is str:
        if not isinstance(value, str):
            raise PduError(f"{where} must be text")
        if not value.isascii() or "\0" in value:
            raise PduError(f"{where} must be ASCII without NUL: {value!r}")
        limit = param.max - 1  # smpplib's max counts the terminating NUL
        if len(value) > limit:
            raise PduError(f"{where} is {len(value)} characters; SMPP 3.4 allows {limit}")
        return value
    assert param.type is ostr
    if not isinstance(value, bytes | bytearray):
        raise PduError(f"{where} must be bytes")
    # smpplib says 260 for message_payload; SMPP 3.4 allows a whole TLV (64 KiB).
    limit = param.max if field == "short_message" else TLV_MAX
    if len(value) > limit:
        raise PduError(f"{where} is {len(value)} octets; SMPP 3.4 allows {limit}")
    if hasattr(param, "size") and len(value) != param.size:
        raise PduError(f"{where} must be exactly {param.size} octets")
    return bytes(value)


def _check_message(command: str, fields: Mapping[str, Any]) -> None:
    """Rules across fields of a message PDU."""
    source = fields.get("source_addr") or ""
    if fields.get("source_addr_ton") == ALPHANUMERIC_TON and len(source) > ALPHANUMERIC_MAX:
        raise PduError(
            f"{command}.source_addr {source!r} is alphanumeric (TON 5): "
            f"at most {ALPHANUMERIC_MAX} characters"
        )
    if fields.get("short_message") and fields.get("message_payload"):
        raise PduError(f"{command}: short_message and message_payload are exclusive")


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    """The next whole PDU from a stream.

    Raises:
        asyncio.IncompleteReadError: the peer closed the connection.
        MalformedPdu: a command_length no PDU has: the stream cannot be followed further.
    """
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">I", head)
    if not HEADER.size <= length <= MAX_PDU_LENGTH:
        raise MalformedPdu(f"command_length {length}: not an SMPP PDU")
    return head + await reader.readexactly(length - 4)


def decode(raw: bytes) -> Pdu:
    """One PDU from its bytes (as ``read_pdu`` returns them).

    Raises:
        UnknownCommand: a command id smpplib has no class for (a request is answered
            generic_nack 0x03).
        MalformedPdu: the bytes do not make the PDU their header announces.
    """
    if len(raw) < HEADER.size:
        raise MalformedPdu(f"{len(raw)} octets: shorter than a PDU header")
    length, command_id, status, sequence = HEADER.unpack_from(raw)
    if length != len(raw):
        raise MalformedPdu(f"command_length {length} for {len(raw)} octets", command_id, sequence)
    name = _NAMES.get(command_id)
    if name not in COMMANDS:
        raise UnknownCommand(f"command_id 0x{command_id:08X}", command_id, sequence)
    try:
        # smpplib refuses a standard TLV its class for the command does not list (a
        # receipt's delivery_failure_reason, a response's additional_status_info_text,
        # both legal SMPP 3.4) with a KeyError: it is given the mandatory fields alone,
        # and every TLV is read from the bytes here.
        body = raw[HEADER.size :]
        end = _mandatory_end(name, body)
        head = HEADER.pack(HEADER.size + end, command_id, status, sequence)
        parsed = smpplib.smpp.parse_pdu(head + body[:end], client=_CONTEXT)
        values, tlvs = _fields(parsed, body)
    except MalformedPdu as exc:
        raise MalformedPdu(f"{name}: {exc}", command_id, sequence) from None
    except (struct.error, IndexError, ValueError, TypeError, KeyError, UnicodeError) as exc:
        raise MalformedPdu(f"{name}: {exc!r}", command_id, sequence) from exc
    except smpplib.exceptions.UnknownCommandError as exc:
        raise MalformedPdu(f"{name}: {exc}", command_id, sequence) from exc
    view = MappingProxyType
    return Pdu(name, command_id, status, sequence, view(values), view(tlvs))


def _mandatory_end(name: str, body: bytes) -> int:
    """Where the mandatory fields of a ``name`` PDU end in ``body`` (its TLVs start),
    walked by the field types smpplib declares: integers by size, C-strings to their NUL,
    octet strings by their length field. A body that ends early ends them there."""
    shape = smpplib.smpp.make_pdu(name, client=_CONTEXT)
    pos, lengths = 0, {}
    for field in shape.params_order:
        if pos >= len(body) or shape.field_is_optional(field):
            break
        param = shape.params[field]
        if param.type is int:
            lengths[field] = int.from_bytes(body[pos : pos + param.size], "big")
            pos += param.size
        elif param.type is str:
            nul = body.find(b"\0", pos)
            if nul < 0:
                raise MalformedPdu(f"{field} is not a C-string (no NUL)")
            pos = nul + 1
        else:
            pos += lengths.get(param.len_field, 0)
    return min(pos, len(body))


def _fields(parsed: Any, body: bytes) -> tuple[dict[str, Any], dict[int, bytes]]:
    """The mandatory fields smpplib parsed, checked against ``body`` by walking it the
    way smpplib did; then every TLV, read from the bytes."""
    values: dict[str, Any] = {}
    pos = 0
    for name in parsed.params_order:
        if pos >= len(body) or parsed.field_is_optional(name):
            break  # smpplib stops where the body ends: later mandatory fields are absent
        param, value = parsed.params[name], getattr(parsed, name)
        if value is None and param.type is not int and param.type is not str:
            value = b""  # an empty octet string ending the mandatory part: smpplib's None
        if param.type is int:
            pos += param.size
        elif param.type is str:
            pos += len(value)
            # message_id may be longer than SMPP allows: kept, as a digest beyond 64
            # characters (``receipts.canonical_id``), rather than the send made unknown.
            longest = LONGEST_ID if name == "message_id" else param.max - 1
            if body[pos : pos + 1] != b"\0" or len(value) > longest:
                raise MalformedPdu(f"{name} is not a C-string of at most {longest}")
            pos += 1
        else:
            if len(value) != getattr(parsed, param.len_field):
                raise MalformedPdu(f"{name} is shorter than its length field")
            pos += len(value)
        values[name] = value
    if pos > len(body):
        raise MalformedPdu("mandatory fields run past the end of the PDU")
    tlvs: dict[int, bytes] = {}
    while pos < len(body):
        if pos + 4 > len(body):
            raise MalformedPdu("a TLV header is cut short")
        tag, size = struct.unpack_from(">HH", body, pos)
        if pos + 4 + size > len(body):
            raise MalformedPdu(f"TLV 0x{tag:04X} runs past the end of the PDU")
        tlvs[tag] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    for tag, raw in tlvs.items():
        name = _TLV_NAMES.get(tag)
        param = parsed.params.get(name) if name else None
        if param is None:
            continue  # a vendor TLV: in ``tlvs`` only
        if param.type is int:
            values[name] = int.from_bytes(raw, "big")
        elif param.type is str:
            values[name] = raw.split(b"\0", 1)[0]  # with or without its NUL
        else:
            values[name] = raw
    return values, tlvs
