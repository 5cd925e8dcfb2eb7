"""Property-based checks of the number normaliser and the part counter."""

from __future__ import annotations

import unicodedata

import smsutil
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.phones import CARRIER_PREFIXES, PhoneRejected, normalise
from campaigns.text import Encoding, segments

PREFIXES = sorted(p for p in CARRIER_PREFIXES if len(p) == 2)
national = st.builds(
    lambda p, rest: p + rest, st.sampled_from(PREFIXES), st.from_regex(r"[0-9]{7}", fullmatch=True)
)
separator = st.sampled_from(["", " ", ".", "-", "\u00a0", "  "])


@st.composite
def written(draw, number: str) -> str:
    """``number`` (9 national digits) written as a person or a spreadsheet might."""
    prefix = draw(
        st.sampled_from(["+84", "84", "0084", "0", "", "+84 (0)", "+84 ", "(+84) ", "+84 0"])
    )
    digits = number
    groups = (
        [digits[:2], digits[2:5], digits[5:]]
        if draw(st.booleans())
        else [digits[:3], digits[3:6], digits[6:]]
    )
    sep = draw(separator)
    body = sep.join(groups)
    if prefix == "0" and draw(st.booleans()):
        body = f"(0{groups[0]}) {sep.join(groups[1:])}"
        prefix = ""
    text = prefix + body
    if draw(st.booleans()):
        text = unicodedata.normalize("NFKC", text).translate(
            {ord(c): ord(c) + 0xFEE0 for c in "0123456789"}
        )
    if text.isdigit() and draw(st.booleans()):
        text = f"{text}.0"  # Excel's float
    if draw(st.booleans()):
        text = "'" + text
    return (
        draw(st.sampled_from(["", " ", "\u00a0"])) + text + draw(st.sampled_from(["", " ", "\t"]))
    )


@given(st.data(), national)
@settings(max_examples=400)
def test_any_writing_of_a_valid_number_gives_the_same_e164(data, number):
    text = data.draw(written(number))
    assert normalise(text).e164 == "+84" + number, text


@given(st.text(max_size=40))
@settings(max_examples=1000)
def test_the_normaliser_only_ever_rejects(text):
    try:
        phone = normalise(text)
    except PhoneRejected:
        return
    assert phone.e164.startswith("+") and phone.e164[1:].isdigit()


alphabet = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,!?@£$€[]{}^~|\\")
    + list("àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ")
    + ["😀", "🇻🇳"]
)


@given(st.lists(alphabet, min_size=1, max_size=400).map("".join))
@settings(max_examples=500)
def test_part_counts_agree_with_an_independent_implementation(text):
    ours = segments(text)
    reference = smsutil.split(unicodedata.normalize("NFC", text))
    assert ours.encoding == (Encoding.GSM7 if reference.encoding == "gsm0338" else Encoding.UCS2)
    assert ours.parts == len(reference.parts), text
