"""SMS text: which encoding a message needs and how many parts the carrier bills.

Rules from ../shared/reference/sms-text.md: GSM 03.38 (160 septets, 153 per part when
split; extension characters cost two and an escape pair is never split) unless any
character is outside both GSM tables, in which case UCS-2 (70 units, 67 per part; a
character outside the BMP costs two units and a surrogate pair is never split). Text is
NFC-normalised first, since NFD input would count every tone mark on its own.

Per part figures depend on the user data header each part of a long message carries
(``capacity``): 153 / 67 behind the usual 6 octets (8-bit reference), 152 / 66 behind the
7 of a 16-bit reference, which some SMSCs are set to use (../shared/reference/providers.md,
long messages: ``06 08 04 REFhi REFlo TOTAL SEQ``).
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


#: Octets of user data header in each part of a long message with an 8-bit reference
#: (``05 00 03 REF TOTAL SEQ``): what every carrier bills by unless told otherwise.
PART_HEADER = 6
#: The most a header can take and leave a part room for a pair of units (a surrogate pair
#: is 4 of its 140 octets), which no split may cut.
MAX_PART_HEADER = 136


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


def capacity(encoding: Encoding, part_header: int = PART_HEADER) -> tuple[int, int]:
    """Units of ``encoding`` in a whole message and in each part of a long one whose user
    data header is ``part_header`` octets: ``(160, 153)`` and ``(70, 67)`` with 6 octets,
    ``(160, 152)`` and ``(70, 66)`` with 7.

    Derivation (3GPP TS 23.040, 9.2.3.24: the header heads the 140 octets of user data):
    GSM 03.38's 160 septets are those 140 octets packed; the septets after a header start
    on a septet boundary (fill bits pad the header), so it takes ``ceil(8 * part_header /
    7)`` septets: 7 for 6 octets (48 bits + 1 fill bit), 8 for 7 (56 bits, none). UCS-2's
    70 units are two octets each, so the header takes ``ceil(part_header / 2)`` of them:
    3 for 6 octets, 4 for 7 (the odd octet left over carries nothing). A message of one
    part has no header: 160 and 70 whatever ``part_header`` is.

    Raises:
        ValueError: ``part_header`` outside 6 (the smallest concatenation header) ..
            ``MAX_PART_HEADER``.
    """
    if not PART_HEADER <= part_header <= MAX_PART_HEADER:
        raise ValueError(
            f"a part's user data header is {PART_HEADER} to {MAX_PART_HEADER} octets, "
            f"not {part_header}"
        )
    if encoding is Encoding.GSM7:
        return 160, 160 - -(-8 * part_header // 7)
    return 70, 70 - -(-part_header // 2)


def segments(text: str, part_header: int = PART_HEADER) -> Segments:
    """Encoding and billed part count of ``text`` (NFC-normalised first), each part of a
    long message behind a user data header of ``part_header`` octets (``capacity``: 6 for
    an 8-bit concatenation reference, 7 for a 16-bit one).

    Parts are filled greedily character by character, so an escape pair or a surrogate
    pair that does not fit at the end of a part moves whole to the next one.

    Raises:
        ValueError: a long text and a ``part_header`` ``capacity`` refuses.
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
    if part_header != PART_HEADER:  # the usual header's figures are the literals above
        per_part = capacity(encoding, part_header)[1]
    if not double:  # every character costs one unit: no pair to keep whole
        return Segments(encoding, -(-units // per_part), units)
    costs = _costs(text, encoding)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return Segments(encoding, parts, units)
