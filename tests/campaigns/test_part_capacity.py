"""What each part of a long message holds behind its user data header
(``campaigns.text.capacity``, ``segments(text, part_header)``): 153 GSM-7 septets or 67
UCS-2 units behind the 6 octets of an 8-bit reference, 152 or 66 behind the 7 of a 16-bit
one (140 octets a part; ../shared/reference/providers.md, SMPP section), a message of one
part 160 or 70 whatever the header. Checked against smsutil, the independent splitter
../shared/reference/sms-text.md names, given the per-part size in octets."""

from __future__ import annotations

import unicodedata

import pytest
import smsutil
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.text import Encoding, Segments, capacity, segments
from tests.scripts.test_cli import loa


def test_capacity_behind_an_8_bit_and_a_16_bit_reference():
    assert capacity(Encoding.GSM7) == capacity(Encoding.GSM7, 6) == (160, 153)
    assert capacity(Encoding.UCS2) == (70, 67)
    assert capacity(Encoding.GSM7, 7) == (160, 152)
    assert capacity(Encoding.UCS2, 7) == (70, 66)


def test_capacity_of_bigger_headers_follows_the_octets_left():
    # 8 octets: 132 left = 1,056 bits = 150 whole septets, 66 UCS-2 units.
    assert capacity(Encoding.GSM7, 8) == (160, 150)
    assert capacity(Encoding.UCS2, 8) == (70, 66)
    # 12 octets (a concatenation and a port header): 128 left, 146 septets, 64 units.
    assert capacity(Encoding.GSM7, 12) == (160, 146)
    assert capacity(Encoding.UCS2, 12) == (70, 64)


@pytest.mark.parametrize("header", [0, 5, 137])
def test_a_header_no_part_could_carry_is_refused(header):
    with pytest.raises(ValueError, match="user data header is 6 to 136 octets"):
        capacity(Encoding.GSM7, header)
    with pytest.raises(ValueError):
        segments("a" * 200, header)


def test_one_part_is_the_same_behind_any_header():
    assert segments("a" * 160, 7) == Segments(Encoding.GSM7, 1, 160)
    assert segments("ư" * 70, 7) == Segments(Encoding.UCS2, 1, 70)
    assert segments("{" * 80, 7) == Segments(Encoding.GSM7, 1, 160)


def test_escape_and_surrogate_pairs_stay_whole_behind_seven_octets():
    # 151 + '€' = 153 > 152: the pair moves; part two holds it and 150 more.
    assert segments("a" * 151 + "€" + "a" * 150, 7).parts == 2
    assert segments("a" * 151 + "€" + "a" * 151, 7).parts == 3
    assert segments("a" * 150 + "€" + "a" * 152, 7).parts == 2  # ends part one exactly
    # 65 + '😀' = 67 > 66: the pair moves; part two holds it and 64 more.
    assert segments("ư" * 65 + "😀" + "ư" * 64, 7).parts == 2
    assert segments("ư" * 65 + "😀" + "ư" * 65, 7).parts == 3
    assert segments("ư" * 64 + "😀" + "ư" * 66, 7).parts == 2


alphabet = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,!?@£$€[]{}^~|\\")
    + list("àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ")
    + ["😀", "🇻🇳"]
)


@given(st.lists(alphabet, min_size=1, max_size=400).map("".join))
@settings(max_examples=400)
def test_part_counts_behind_seven_octets_agree_with_smsutil(text):
    ours = segments(text, 7)
    nfc = unicodedata.normalize("NFC", text)
    if ours.encoding is Encoding.GSM7:  # smsutil counts a septet as a byte
        reference = smsutil.gsm_split(nfc, multi_part_bytes=152)
    else:  # and a UCS-2 unit as two
        reference = smsutil.unicode_split(nfc, multi_part_bytes=2 * 66)
    assert ours.parts == len(reference.parts), text


def test_text_check_counts_behind_the_header_it_is_told(tmp_path):
    import json

    text = "a" * 151 + "€" + "a" * 151
    usual = json.loads(loa("text", "check", text, "--json", cwd=tmp_path).stdout)
    told = loa("text", "check", text, "--part-header", "7", "--json", cwd=tmp_path)
    sixteen = json.loads(told.stdout)
    assert (usual["parts"], usual["part_header"]) == (2, 6)
    assert (sixteen["parts"], sixteen["part_header"], sixteen["khong_dau"]["parts"]) == (3, 7, 3)
    shown = loa("text", "check", text, "--part-header", "7", cwd=tmp_path).stdout
    assert "Số tin · parts: 3  (7-octet part header)" in shown
    refused = loa("text", "check", text, "--part-header", "5", cwd=tmp_path)
    assert refused.returncode == 2 and "--part-header" in refused.stderr
