"""SMS text: which encoding a message needs and how many parts the carrier bills.

Rules from ../shared/reference/sms-text.md: GSM 03.38 (160 septets, 153 per part when
split; extension characters cost two and an escape pair is never split) unless any
character is outside both GSM tables, in which case UCS-2 (70 units, 67 per part; a
character outside the BMP costs two units and a surrogate pair is never split). Text is
NFC-normalised first, since NFD input would count every tone mark on its own.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class Segments:
    encoding: Encoding
    parts: int
    units: int  # septets for GSM 03.38, UTF-16 code units for UCS-2


def normalise(text: str) -> str:
    """NFC, the form carriers bill by."""
    return unicodedata.normalize("NFC", text)


_NOT_GSM = re.compile("[^" + re.escape("".join(sorted(GSM_BASIC | GSM_EXTENSION))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(GSM_EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


#: Characters a phone shows as nothing: separators (spaces, line and paragraph breaks),
#: controls and format characters (zero-width spaces and joiners, bidirectional marks).
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def shows_anything(text: str) -> bool:
    """Whether ``text`` has a character a reader would see: a text of only spaces and
    zero-width or control characters (``"\u200b\u200c\u2060"``) is as empty as ``""``,
    and would be billed for nothing."""
    return any(unicodedata.category(ch) not in _INVISIBLE for ch in text)


def encoding_of(text: str) -> Encoding:
    """GSM 03.38 when every character is in its tables, UCS-2 otherwise."""
    return Encoding.UCS2 if _NOT_GSM.search(text) else Encoding.GSM7


def forcing_ucs2(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of appearance."""
    return list(dict.fromkeys(_NOT_GSM.findall(normalise(text))))


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segments(text: str) -> Segments:
    """Encoding and billed part count of ``text`` (NFC-normalised first).

    Parts are filled greedily character by character, so an escape pair or a surrogate
    pair that does not fit at the end of a part moves whole to the next one.
    """
    text = normalise(text)
    encoding = encoding_of(text)
    if encoding is Encoding.GSM7:
        single, per_part, double = 160, 153, len(_EXTENSION.findall(text))
    else:
        single, per_part, double = 70, 67, len(_ASTRAL.findall(text))
    units = len(text) + double
    if units <= single:
        return Segments(encoding, 1 if units else 0, units)
    if not double:  # every character costs one unit: no pair to keep whole
        return Segments(encoding, -(-units // per_part), units)
    costs = _costs(text, encoding)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return Segments(encoding, parts, units)
