"""Phone numbers as Vietnamese lists write them, normalised to E.164.

Vietnamese mobile numbers (the bulk of every list) take a fast path of string operations
and one table lookup; only numbers written with another country code go through
libphonenumber, which costs ~50 times more per number (see ../shared/reference/vietnam.md).

Every rejection carries a stable reason code that reports and tests rely on.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import phonenumbers


class Reject(StrEnum):
    """Why a cell of a list is not a number we can text. Stable codes: reports key on them."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    WRONG_LENGTH = "wrong_length"
    LANDLINE = "landline"
    UNALLOCATED_PREFIX = "unallocated_prefix"
    INVALID_FOREIGN = "invalid_foreign"


class PhoneRejected(ValueError):
    """A value that is not a textable number, with the reason code."""

    def __init__(self, reason: Reject) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Phone(NamedTuple):
    """A normalised number: E.164, ISO country, allocation carrier (Vietnam only), and
    whether it was rewritten from a legacy 11-digit ``01xx`` number. (A NamedTuple: it is
    built once per list row, and a frozen dataclass costs three times as much.)"""

    e164: str
    country: str
    carrier: str | None = None
    legacy: bool = False


#: 2018 conversion of 11-digit numbers: old national prefix (without 0) -> new one.
LEGACY_PREFIXES: dict[str, str] = {
    # Viettel
    "162": "32", "163": "33", "164": "34", "165": "35",
    "166": "36", "167": "37", "168": "38", "169": "39",
    # MobiFone
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",
    # VinaPhone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    # Vietnamobile, Gmobile
    "186": "56", "188": "58", "199": "59",
}  # fmt: skip

#: Allocation carrier by national prefix (two digits, or three where a range is split).
CARRIER_PREFIXES: dict[str, str] = {
    **{p: "viettel" for p in ("32", "33", "34", "35", "36", "37", "38", "39", "86", "96",
                              "97", "98")},
    **{p: "vinaphone" for p in ("81", "82", "83", "84", "85", "88", "91", "94", "87")},
    **{p: "mobifone" for p in ("70", "76", "77", "78", "79", "89", "90", "93")},
    **{p: "vietnamobile" for p in ("52", "56", "58", "92")},
    **{p: "gmobile" for p in ("59", "993", "994", "995", "996", "997")},
    **{p: "itelecom" for p in ("998", "999")},
    "55": "reddi",
}  # fmt: skip

#: Characters people put between digits; deleted in one C-level pass.
#: The two-digit prefixes that name their carrier alone (not those split at three digits).
_CARRIER_BY_TWO = {p: c for p, c in CARRIER_PREFIXES.items() if len(p) == 2}

_SEPARATORS = str.maketrans("", "", " .-()/\t\r\n")


def _clean(raw: str) -> str:
    # NFKC turns full-width digits and no-break spaces into their ASCII forms; most cells
    # are ASCII already, and skipping it for them is a large share of the fast path.
    # pragma below: NFKC leaves ASCII unchanged, so skipping it is speed only
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)  # pragma: no mutate
    text = text.strip().lstrip("'")
    if text.endswith(".0") and text[:-2].isdigit():  # Excel stored the number as a float
        text = text[:-2]
    # "+84 (0)912 …" (the trunk 0 written after the country code) needs nothing here: the
    # brackets go with the separators, and the 0 after +84 is dropped by ``_vietnamese``
    # (after another country's code, by libphonenumber).
    return text.translate(_SEPARATORS)


def _vietnamese(national: str) -> Phone:
    if len(national) == 9:  # the common case: one dictionary lookup
        # No mutate: a miss here falls through to the full lookup below, same answer.
        carrier = _CARRIER_BY_TWO.get(national[:2])  # pragma: no mutate
        if carrier is not None:
            return Phone("+84" + national, "VN", carrier, False)  # pragma: no mutate (default)
    legacy = False
    if national[:1] == "0" and len(national) in (10, 11):
        # "+84 0912 …": the trunk 0 written after the country code (as "+84 (0)912 …"
        # already was); a number with it is 10 digits (11 before the 2018 change)
        return _vietnamese(national[1:])
    if national[:1] == "2" and len(national) in (9, 10):  # 02x area codes: fixed lines
        raise PhoneRejected(Reject.LANDLINE)
    if len(national) == 10 and national[0] == "1":
        new = LEGACY_PREFIXES.get(national[:3])
        if new is None:
            raise PhoneRejected(Reject.UNALLOCATED_PREFIX)
        national, legacy = new + national[3:], True
    if len(national) != 9:
        raise PhoneRejected(Reject.WRONG_LENGTH)
    carrier = CARRIER_PREFIXES.get(national[:2]) or CARRIER_PREFIXES.get(national[:3])
    if carrier is None:
        raise PhoneRejected(Reject.UNALLOCATED_PREFIX)
    return Phone("+84" + national, "VN", carrier, legacy)


@lru_cache(maxsize=16_384)
def _foreign(text: str) -> Phone:
    """Parsed and validated by ``phonenumbers`` (about 0.1 ms a number): cached, because
    a number is often looked at twice in a row (an arrival parsed, then planned)."""
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise PhoneRejected(Reject.INVALID_FOREIGN) from None
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneRejected(Reject.INVALID_FOREIGN)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, country=phonenumbers.region_code_for_number(parsed) or "ZZ")


def normalise(raw: str | None) -> Phone:
    """Normalise one cell of a list.

    Parameters:
        raw: the cell as read (any of the forms in ../shared/reference/vietnam.md).

    Returns:
        The number in E.164 with its country and, for Vietnam, its allocation carrier.

    Raises:
        PhoneRejected: with a ``Reject`` reason when the cell is not a textable number.
    """
    if raw is None:
        raise PhoneRejected(Reject.EMPTY)
    if raw.isdigit() and raw.isascii():  # bare digits ("0912345678"): nothing to clean
        text = raw
    else:
        text = _clean(raw)
        if not text:
            raise PhoneRejected(Reject.EMPTY)
        if not (text.isdigit() or (text[:1] == "+" and text[1:].isdigit())) or not text.isascii():
            raise PhoneRejected(Reject.NOT_A_NUMBER)
    if text[0] == "+":
        if text.startswith("+84"):
            return _vietnamese(text[3:])
        return _foreign(text)
    if text.startswith("0084"):
        return _vietnamese(text[4:])
    if text.startswith("84") and len(text) in (11, 12):
        return _vietnamese(text[2:])
    if text.startswith("0"):
        return _vietnamese(text[1:])
    return _vietnamese(text)


def mask(e164: str) -> str:
    """``+84912345678`` -> ``+8491*****78``: enough to tell numbers apart, not to dial."""
    if len(e164) <= 7:
        return "*" * len(e164)
    return e164[:5] + "*" * (len(e164) - 7) + e164[-2:]


#: A run of 9 to 15 digits, optionally behind '+', possibly grouped by single spaces,
#: dots or dashes, not inside a word.
PHONE_LIKE = re.compile(r"(?<![\w+])\+?\d(?:[ .\-]?\d){8,14}(?!\w)")
#: What such a run must look like to be a phone number: E.164 behind '+' or '00', or a
#: Vietnamese one (``0…`` national, ``84…`` without the '+', or the bare nine digits of a
#: mobile). Other long runs (a timestamp in a campaign id, an amount) are left as they
#: are: ``chaos-redis-2026113001203`` is a campaign, not a number.
_NUMBER = re.compile(r"\+\d{8,15}|00\d{7,13}|0\d{8,10}|84\d{9,10}|[35789]\d{8}")


def _mask_match(match: re.Match[str]) -> str:
    digits = re.sub(r"[ .\-]", "", match.group())
    return mask(digits) if _NUMBER.fullmatch(digits) else match.group()


def mask_text(value: str) -> str:
    """Mask every phone number in ``value`` (``PHONE_LIKE`` runs that look like one)."""
    return PHONE_LIKE.sub(_mask_match, value)


#: As ``PHONE_LIKE``, but a run may touch letters and ``_``: a name made of words and a
#: number (``sdt0912345678.csv``, ``optout_0912345678``).
_PHONE_IN_WORDS = re.compile(r"(?<![0-9+])\+?[0-9](?:[ .\-]?[0-9]){8,14}(?![0-9])")


def mask_in_names(value: str) -> str:
    """Mask every phone number in free text shown to a role that sees masked numbers only
    (a suppression's source, a file's name): as ``mask_text``, and a number glued to
    letters (``sdt0912345678``) or written in full-width digits as well. Not for logs:
    an identifier's digits there (``a912345678f``) would be masked too."""
    import unicodedata

    return _PHONE_IN_WORDS.sub(_mask_match, unicodedata.normalize("NFKC", value))


def load_carrier_overrides(path: Path) -> dict[str, str]:
    """Ported numbers: a CSV of ``number,carrier`` rows (a header is allowed), as operators
    export them from the number-portability database. Numbers in any form ``normalise``
    accepts; carriers lower case as in ``CARRIER_PREFIXES``.

    Raises:
        ValueError: unreadable file, or a row whose number or carrier is not usable,
            naming the file and the row.
    """
    known = set(CARRIER_PREFIXES.values())
    overrides: dict[str, str] = {}
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ported-number list ({exc.strerror})") from None
    with handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise ValueError(f"{path}: row {line}: expected number,carrier")
            number, carrier = row[0], row[1].strip().lower()
            try:
                phone = normalise(number)
            except PhoneRejected as rejected:
                if line == 1:
                    continue  # a header row
                raise ValueError(f"{path}: row {line}: {rejected.reason.value}") from None
            if carrier not in known:
                raise ValueError(
                    f"{path}: row {line}: unknown carrier {carrier!r} (known: {', '.join(sorted(known))})"
                )
            overrides[phone.e164] = carrier
    return overrides
