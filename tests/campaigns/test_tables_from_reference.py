"""Loa's tables, entry by entry, against the reference text they come from.

The 2018 eleven-to-ten-digit conversion, the carriers' prefixes, the GSM 03.38 tables and
the advertising rules are facts of the outside world typed into code: one wrong entry drops
a citizen's message or bills it at three times the price, and a few examples do not notice
(issue 19). These tests parse the reference itself (``tests/reference/``: verbatim copies
of ``../shared/reference/``, which a clean clone lacks) and check every entry through the
path production takes, both ways: each entry of the reference works, and nothing the
reference lacks does.
"""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from smsutil.codecs import GSM_BASIC_CHARSET

from campaigns.phones import CARRIER_PREFIXES, LEGACY_PREFIXES, Phone, PhoneRejected, Reject
from campaigns.phones import normalise as normalise_phone
from campaigns.spec import CampaignSpec
from campaigns.text import GSM_BASIC, GSM_EXTENSION, Encoding, Segments, segments
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COPIES = ROOT / "tests" / "reference"
ORIGINALS = ROOT.parent / "shared" / "reference"
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def _reference(name: str) -> str:
    return (COPIES / name).read_text(encoding="utf-8")


def _bullets(text: str) -> list[tuple[int, str]]:
    """Markdown list items as ``(indent, text)``; a wrapped line joins the item whose text
    starts at its indentation (a nested item's, or its parent's after the nested list)."""
    items: list[tuple[int, str]] = []
    for line in text.splitlines():
        item = re.match(r"^( *)- (.*)$", line)
        indent = len(line) - len(line.lstrip(" "))
        if item:
            items.append((len(item[1]), item[2]))
            continue
        owner = next((i for i in reversed(range(len(items))) if items[i][0] + 2 == indent), None)
        if line.strip() and indent and owner is not None:
            items[owner] = (items[owner][0], f"{items[owner][1]} {line.strip()}")
    return items


def _item(text: str, opening: str) -> str:
    found = [body for _, body in _bullets(text) if body.startswith(opening)]
    assert len(found) == 1, f"the reference has {len(found)} items starting {opening!r}"
    return found[0]


def _children(text: str, opening: str) -> list[str]:
    """The nested items of the item that starts with ``opening``."""
    items = _bullets(text)
    index = next(i for i, (_, body) in enumerate(items) if body.startswith(opening))
    found = []
    for indent, body in items[index + 1 :]:
        if indent <= items[index][0]:
            break
        found.append(body)
    assert found, f"no entries under {opening!r}"
    return found


def _carrier(name: str) -> str:
    """``VinaPhone (VNPT)`` -> ``vinaphone``: the code names a carrier by its first word."""
    return name.split()[0].lower()


def _conversions() -> dict[str, tuple[str, str]]:
    """The 2018 conversion as written: old prefix -> (new prefix, carrier),
    ``"0162" -> ("032", "viettel")``."""
    table: dict[str, tuple[str, str]] = {}
    for entry in _children(_reference("vietnam.md"), "2018 conversion"):
        name, _, pairs = entry.partition(": ")
        for pair in pairs.split(", "):
            match = re.fullmatch(r"(01\d\d)→(0\d\d)", pair)
            assert match, f"cannot read {pair!r} in {entry!r}"
            assert match[1] not in table, f"{match[1]} twice in the reference"
            table[match[1]] = (match[2], _carrier(name))
    return table


def _allocations() -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """National prefixes as written (``"032"``, ``"0993"``) -> carrier, and the prefixes
    a note marks *unverified* -> the carriers the note names for them."""
    entries = [e.partition(": ") for e in _children(_reference("vietnam.md"), "Allocated 10")]
    names = {_carrier(name) for name, _, _ in entries}
    allocated: dict[str, str] = {}
    unverified: dict[str, frozenset[str]] = {}
    for name, _, value in entries:
        carrier = _carrier(name)
        for note in re.findall(r"\(([^)]*)\)", value):
            if "*unverified*" in note:
                named = {n for n in names if n in note.lower()} | {carrier}
                unverified.update(dict.fromkeys(re.findall(r"\b0\d{2,3}\b", note), named))
        for token in re.sub(r"\s*\([^)]*\)", "", value).split(", "):
            match = re.fullmatch(r"(0\d{2,3})(?:–(0\d{2,3}))?", token)
            assert match, f"cannot read {token!r} in {value!r}"
            first, last = match[1], match[2] or match[1]
            for number in range(int(first), int(last) + 1):
                prefix = f"{number:0{len(first)}d}"
                assert prefix not in allocated, f"{prefix} twice in the reference"
                allocated[prefix] = carrier
    assert not set(unverified) & set(allocated)
    return allocated, {p: frozenset(c) for p, c in unverified.items()}


CONVERSIONS = _conversions()
ALLOCATED, UNVERIFIED = _allocations()
#: Last digits of a number: the conversion leaves them alone, whatever they are.
TAILS = ("2345678", "0000009", "9876501")


@pytest.mark.parametrize("old", sorted(CONVERSIONS))
def test_each_2018_conversion_turns_the_old_prefix_into_the_new_one(old):
    new, carrier = CONVERSIONS[old]
    for tail in TAILS:
        for written in (old + tail, "+84" + old[1:] + tail, "84" + old[1:] + tail):
            expected = Phone("+84" + new[1:] + tail, "VN", carrier, legacy=True)
            assert normalise_phone(written) == expected, written


def test_no_old_prefix_converts_unless_the_reference_lists_it():
    ours = {"0" + old: "0" + new for old, new in LEGACY_PREFIXES.items()}
    assert ours == {old: new for old, (new, _) in CONVERSIONS.items()}
    converted = []
    for number in range(100, 200):  # every eleven-digit 01xx prefix
        old = f"0{number}"
        if old in CONVERSIONS:
            continue
        try:
            converted.append((old, normalise_phone(old + "2345678")))
        except PhoneRejected as rejected:
            if rejected.reason is not Reject.UNALLOCATED_PREFIX:
                converted.append((old, rejected.reason))
    assert not converted


@pytest.mark.parametrize("prefix", sorted(ALLOCATED))
def test_each_allocated_prefix_is_recognised_as_its_carrier(prefix):
    for tail in TAILS:
        national = (prefix + tail)[1:10]
        for written in ("0" + national, "+84" + national):
            expected = Phone("+84" + national, "VN", ALLOCATED[prefix], legacy=False)
            assert normalise_phone(written) == expected, written


@pytest.mark.parametrize("prefix", sorted(UNVERIFIED))
def test_an_unverified_prefix_is_a_mobile_number_of_a_carrier_the_reference_names(prefix):
    """Allocated for sure, to a carrier the sources disagree on: textable either way."""
    phone = normalise_phone(prefix + "2345678"[: 10 - len(prefix)])
    assert phone.carrier in UNVERIFIED[prefix]


def test_the_carrier_table_holds_the_reference_and_nothing_else():
    ours = {"0" + prefix: carrier for prefix, carrier in CARRIER_PREFIXES.items()}
    for prefix, named in UNVERIFIED.items():
        assert ours.pop(prefix, None) in named
    assert ours == ALLOCATED


def test_every_prefix_the_reference_lacks_is_refused():
    """All 900 three-digit national prefixes through ``normalise``: an entry the code has
    and the reference lacks makes a number textable that should be refused."""
    wrong = []
    for number in range(100, 1000):
        prefix = f"0{number}"
        named = {ALLOCATED.get(prefix[:3]), ALLOCATED.get(prefix)} - {None}
        named |= UNVERIFIED.get(prefix[:3], frozenset())
        refusal = Reject.LANDLINE if prefix[1] == "2" else Reject.UNALLOCATED_PREFIX
        try:
            found: object = normalise_phone(prefix + "234567").carrier
        except PhoneRejected as rejected:
            found = rejected.reason
        if (found not in named) if named else (found is not refusal):
            wrong.append((prefix, found, named or refusal))
    assert not wrong


def _gsm() -> tuple[frozenset[str], frozenset[str], int, int]:
    """The basic table (without the escape), the extension, the basic table's size and an
    extension character's cost in septets, from sms-text.md. The reference writes "common
    punctuation" without listing it; smsutil, the independent implementation it names for
    tests, spells it out."""
    text = _reference("sms-text.md")
    basic = _item(text, "GSM 03.38 basic table")
    size = int(re.search(r"has (\d+) characters", basic)[1])
    named = {
        "letters": string.ascii_letters,
        "digits": string.digits,
        "common punctuation": set(GSM_BASIC_CHARSET) & set(string.punctuation),
        "space": " ",
        "LF": "\n",
        "CR": "\r",
    }
    table: set[str] = set()
    for part in re.search(r"\((.*)\)", basic)[1].split(", "):
        listed = re.fullmatch(r"`(.*)`", part)
        assert listed or part in named, f"cannot read {part!r} in {basic!r}"
        table.update(listed[1].split() if listed else named[part])
    extension = _item(text, "The extension table")
    cost = int(re.search(r"costs (\d+) septets per character", extension)[1])
    escaped = set(re.search(r"`([^`]*)`", extension)[1].split())
    escaped |= {"\f"} if "form feed" in extension else set()
    assert all(len(character) == 1 for character in table | escaped)
    return frozenset(table), frozenset(escaped), size, cost


BASIC, EXTENSION, BASIC_SIZE, EXTENSION_COST = _gsm()


def _limits() -> dict[Encoding, tuple[int, int]]:
    """The reference's table: encoding -> (one-part message, per part when split)."""
    limits = {}
    for line in _reference("sms-text.md").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.match(r"\d+ ", cells[1]):
            encoding = Encoding.GSM7 if cells[0].startswith("GSM 03.38") else Encoding.UCS2
            limits[encoding] = (int(cells[1].split()[0]), int(cells[2].split()[0]))
    assert set(limits) == set(Encoding)
    return limits


LIMITS = _limits()


def test_the_gsm_tables_hold_the_reference_and_nothing_else():
    assert len(BASIC) + 1 == BASIC_SIZE  # one place of the 128 is the escape to the extension
    assert not BASIC & EXTENSION
    assert GSM_BASIC == BASIC
    assert GSM_EXTENSION == EXTENSION


def test_each_basic_character_costs_one_septet():
    single, _ = LIMITS[Encoding.GSM7]
    wrong = [
        ch
        for ch in sorted(BASIC)
        if segments(ch * single) != Segments(Encoding.GSM7, 1, single)
        or segments(ch * (single + 1)) != Segments(Encoding.GSM7, 2, single + 1)
    ]
    assert not wrong


def test_each_extension_character_costs_its_escape_too():
    single, _ = LIMITS[Encoding.GSM7]
    fit = single // EXTENSION_COST
    wrong = [
        ch
        for ch in sorted(EXTENSION)
        if segments(ch) != Segments(Encoding.GSM7, 1, EXTENSION_COST)
        or segments(ch * fit) != Segments(Encoding.GSM7, 1, fit * EXTENSION_COST)
        or segments(ch * (fit + 1)).parts != 2
    ]
    assert not wrong


def test_every_other_character_forces_ucs2():
    """Each character of the Basic Multilingual Plane, NFC-normalised as carriers bill:
    GSM 03.38 when the reference's tables hold all of it, UCS-2 otherwise."""
    wrong = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:  # surrogates: halves of a pair, not characters
            continue
        nfc = unicodedata.normalize("NFC", chr(code))
        if set(nfc) <= BASIC | EXTENSION:
            cost = sum(EXTENSION_COST if ch in EXTENSION else 1 for ch in nfc)
            expected = Segments(Encoding.GSM7, 1, cost)
        else:
            # UTF-16 code units: a few compatibility ideographs become astral under NFC
            expected = Segments(Encoding.UCS2, 1, len(nfc.encode("utf-16-le")) // 2)
        if segments(chr(code)) != expected:
            wrong.append(f"U+{code:04X}")
    assert not wrong


def test_the_vietnamese_letters_the_reference_names_fall_where_it_says():
    in_gsm, forcing = re.findall(r"`([^`]*)`", _item(_reference("sms-text.md"), "Vietnamese:"))
    assert {segments(ch).encoding for ch in in_gsm.split()} == {Encoding.GSM7}
    assert {segments(ch).encoding for ch in forcing.split()} == {Encoding.UCS2}


@pytest.mark.parametrize("encoding", [Encoding.GSM7, Encoding.UCS2])
def test_parts_break_at_the_reference_limits(encoding):
    single, per_part = LIMITS[encoding]
    ch = "a" if encoding is Encoding.GSM7 else "ư"
    counts = [segments(ch * n).parts for n in (single, single + 1, 2 * per_part)]
    assert [*counts, segments(ch * (2 * per_part + 1)).parts] == [1, 2, 2, 3]
    assert segments(ch).encoding is encoding


ANTI_SPAM = _reference("vietnam.md").split("## Anti-spam rules", 1)[1]
INSTRUCTION = "Tu choi QC soan TC gui 5656"


def _advertising(**fields: object) -> CampaignSpec:
    text = f"[QC] Nho Ninh Thuan giam 20%. {INSTRUCTION}"
    spec = {"id": "ad", "name": "ad", "category": "advertising", "brandname": "NinhThuan"}
    spec |= {"provider": "sandbox", "messages": {"vi": text}, "opt_out_instruction": INSTRUCTION}
    return CampaignSpec.model_validate(spec | fields)


def test_advertising_sends_only_within_the_reference_hours():
    hours = re.search(r"only between (\d\d):(\d\d) and (\d\d):(\d\d) local time", ANTI_SPAM)
    day = datetime(2026, 12, 1, tzinfo=VIETNAM)
    start = day + timedelta(hours=int(hours[1]), minutes=int(hours[2]))
    end = day + timedelta(hours=int(hours[3]), minutes=int(hours[4]))
    minute = timedelta(minutes=1)
    window = _advertising().window
    assert [window.is_open(m) for m in (start - minute, start, end - minute, end)] == [
        False,
        True,
        True,
        False,
    ]
    for wider in ((start - minute, end), (start, end + minute)):
        with pytest.raises(ValidationError, match="sending_hours"):
            _advertising(sending_hours="-".join(m.strftime("%H:%M") for m in wider))
    assert _advertising(sending_hours=f"{start:%H:%M}-{end:%H:%M}").window.is_open(start)


def test_a_brandname_follows_the_reference_rules():
    rule = _item(ANTI_SPAM, "Brandname")
    longest = int(re.search(r"at most (\d+) characters", rule)[1])
    marks = re.search(r"Latin letters, digits, ((?:`.`, )*`.`) and space", rule)[1]
    allowed = set(string.ascii_letters + string.digits + " ") | set(re.findall(r"`(.)`", marks))
    for ch in map(chr, range(0x20, 0x7F)):  # printable ASCII, one character at a time
        if ch in allowed:
            assert _advertising(brandname=f"Loa{ch}1").brandname == f"Loa{ch}1"
        else:
            with pytest.raises(ValidationError, match="brandname"):
                _advertising(brandname=f"Loa{ch}1")
    assert _advertising(brandname="N" * longest).brandname == "N" * longest
    assert "not digits only" in rule
    for wrong in ("N" * (longest + 1), "5656", "1" * longest):
        with pytest.raises(ValidationError, match="brandname"):
            _advertising(brandname=wrong)


def test_an_advertising_text_carries_the_reference_label_and_refusal():
    labels = re.findall(r"`(\[\w+\])`", _item(ANTI_SPAM, "An advertising message begins"))
    assert len(labels) == 2
    for label in labels:
        text = f"{label} Nho Ninh Thuan. {INSTRUCTION}"
        assert _advertising(messages={"vi": text}).messages["vi"].text == text
    for wrong in (f"[KM] Nho Ninh Thuan. {INSTRUCTION}", f"{labels[0]} Nho Ninh Thuan."):
        with pytest.raises(ValidationError, match="advertising text must"):
            _advertising(messages={"vi": wrong})


def test_the_advertising_cap_defaults_to_the_reference_figure():
    cap = int(re.search(r"At most (\d+) advertising SMS to one number per 24 hours", ANTI_SPAM)[1])
    assert Settings.model_fields["ad_daily_cap"].default == cap


@pytest.mark.parametrize("name", ["vietnam.md", "sms-text.md"])
def test_the_copies_say_what_the_shared_reference_says(name):
    """Where ``../shared/reference`` sits beside the clone, each copied section must be in
    it word for word (a clean clone in CI has only the copies: nothing to compare there)."""
    original = ORIGINALS / name
    if not original.is_file():
        pytest.skip("../shared/reference is not beside this clone")
    copied = _reference(name).split("-->\n", 1)[1]
    source = original.read_text(encoding="utf-8")
    for section in re.split(r"(?m)^(?=## )", copied):
        assert section.strip() in source
