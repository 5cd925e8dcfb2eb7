"""A message's text as the submit_sm fields of its parts.

Parts are cut exactly as planning counts them (``campaigns.text.segments``, the rules of
../shared/reference/sms-text.md): greedily, character by character, 160 septets or 70
UCS-2 units whole, else 153 / 67 per part behind an 8-bit-reference header (152 / 66
behind a 16-bit one), an escape pair or a surrogate pair never split. So the parts the
SMSC receives are the parts Loa planned and billed. With SAR the SMSC adds the header on
the air, so parts are cut as for an 8-bit header; with ``message_payload`` the SMSC cuts
the text itself (one submit_sm, one id).

Encodings: GSM 03.38 unpacked, one septet per octet, through the ``gsm0338`` package's
table (smpplib's has ``§`` wrong and no form feed), applied by ``codecs.charmap_encode``
at C speed; Latin-1 or ASCII for an SMSC that reads those for GSM texts; UCS-2 as UTF-16
big-endian (a character outside the BMP as its surrogate pair).
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

from campaigns.text import GSM_BASIC, GSM_EXTENSION, Encoding, capacity
from providers.smpp.config import Alphabet, Concatenation

ESCAPE = 0x1B
DATA_CODING_UCS2 = 0x08
ESM_UDHI = 0x40


def _gsm_table() -> dict[int, bytes]:
    """Code point -> its unpacked GSM 03.38 octets (two for the extension table)."""
    table = {
        ord(unicodedata.lookup(name)): bytes([code]) for code, name in BASIC_CHARACTER_SET.items()
    }
    for code, name in BASIC_CHARACTER_SET_EXTENSION.items():
        if code != ESCAPE:  # the escape itself, doubled, is not a character
            table.setdefault(ord(unicodedata.lookup(name)), bytes([ESCAPE, code]))
    return table


GSM_TABLE: Mapping[int, bytes] = _gsm_table()


def encode_gsm(text: str, alphabet: Alphabet = "gsm") -> bytes:
    """``text`` (GSM-7 characters) in the alphabet the SMSC reads.

    Raises:
        UnicodeEncodeError: a character the alphabet lacks (planning refuses such texts
            for this provider: ``uncarried``).
    """
    if alphabet == "gsm":
        return codecs.charmap_encode(text, "strict", GSM_TABLE)[0]
    return text.encode("latin-1" if alphabet == "latin1" else "ascii")


@lru_cache(maxsize=4)
def uncarried(alphabet: Alphabet) -> frozenset[str]:
    """The GSM-7 characters ``alphabet`` cannot carry (none for GSM 03.38 itself)."""
    wanted = GSM_BASIC | GSM_EXTENSION
    if alphabet == "gsm":
        return frozenset(ch for ch in wanted if ord(ch) not in GSM_TABLE)
    codec = "latin-1" if alphabet == "latin1" else "ascii"
    missing = set()
    for ch in wanted:
        try:
            ch.encode(codec)
        except UnicodeEncodeError:
            missing.add(ch)
    return frozenset(missing)


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def split(text: str, encoding: Encoding, header: int = 6) -> list[str]:
    """``text`` cut into the parts a carrier bills (``campaigns.text.segments``'s count)."""
    single, per_part = capacity(encoding, header)
    if len(text) <= single // 2:  # the usual SMS: whole, however its characters cost
        return [text]
    costs = _costs(text, encoding)
    if sum(costs) <= single:
        return [text]
    pieces, start, used = [], 0, 0
    for index, cost in enumerate(costs):
        if used + cost > per_part:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    pieces.append(text[start:])
    return pieces


def _octets(piece: str, encoding: Encoding, alphabet: Alphabet) -> bytes:
    if encoding is Encoding.UCS2:
        return piece.encode("utf-16-be", "surrogatepass")
    return encode_gsm(piece, alphabet)


def submissions(
    text: str,
    encoding: Encoding,
    *,
    reference: int,
    concatenation: Concatenation = "udh8",
    alphabet: Alphabet = "gsm",
    gsm_data_coding: int = 0,
) -> list[dict[str, Any]]:
    """The submit_sm fields each part of ``text`` needs beyond the addresses: its
    ``short_message`` (or ``message_payload``), ``data_coding``, ``esm_class`` and, with
    SAR, its TLVs.

    Parameters:
        reference: the message's concatenation reference (cut to 8 or 16 bits): Loa's
            message id, so that consecutive messages to a handset never share one.

    Raises:
        UnicodeEncodeError: a GSM text holding a character ``alphabet`` lacks.
        ValueError: more than 255 parts (no header can number them).
    """
    coding = DATA_CODING_UCS2 if encoding is Encoding.UCS2 else gsm_data_coding
    if concatenation == "payload":
        return [{"message_payload": _octets(text, encoding, alphabet), "data_coding": coding}]
    header = 7 if concatenation == "udh16" else 6
    pieces = split(text, encoding, header)
    total = len(pieces)
    if total == 1:
        return [{"short_message": _octets(text, encoding, alphabet), "data_coding": coding}]
    if total > 255:
        raise ValueError(f"{total} parts: a long message has at most 255")
    made = []
    for seq, piece in enumerate(pieces, start=1):
        body = _octets(piece, encoding, alphabet)
        if concatenation == "sar":
            made.append(
                {
                    "short_message": body,
                    "data_coding": coding,
                    "sar_msg_ref_num": reference & 0xFFFF,
                    "sar_total_segments": total,
                    "sar_segment_seqnum": seq,
                }
            )
            continue
        if concatenation == "udh16":
            udh = bytes([6, 8, 4, (reference >> 8) & 0xFF, reference & 0xFF, total, seq])
        else:
            udh = bytes([5, 0, 3, reference & 0xFF, total, seq])
        made.append({"short_message": udh + body, "data_coding": coding, "esm_class": ESM_UDHI})
    return made
