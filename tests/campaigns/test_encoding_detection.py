"""Which codec a list file is read with, told from its first bytes, or refused.

The codec name is shown to operators (``loa lists`` prints it), so its exact spelling is
part of the behaviour.
"""

from __future__ import annotations

import codecs
import re

import pytest

from campaigns.encoding import SAMPLE, EncodingUnclear, detect
from tests.vietnamese import to_cp1258

REFUSAL = re.compile(
    r"cannot tell the text encoding with confidence( \(it might be [\w-]+\))?; "
    r"name it with --encoding \(utf-8, utf-16, cp1258 …\)"
)


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (codecs.BOM_UTF8 + "0912345678,Bình\n".encode(), "utf-8-sig"),
        ("0912345678\tBình\n".encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + "0912345678\tBình\n".encode("utf-16-be"), "utf-16"),
        ("0912345678,Bình\n".encode(), "utf-8"),
    ],
)
def test_a_bom_or_clean_utf8_names_the_codec(tmp_path, data, codec):
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    assert detect(path) == codec


def test_utf8_cut_mid_character_by_the_sample_is_still_utf8(tmp_path):
    # 'ư' is two bytes in UTF-8; the sample ends after its first byte.
    head = b"a" * (SAMPLE - 1)
    path = tmp_path / "list.csv"
    path.write_bytes(head + "ư,0912345678\n".encode())
    assert len(head) + 1 == SAMPLE
    assert detect(path) == "utf-8"


def test_bytes_nothing_can_read_are_refused_without_a_guess(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(bytes(range(128, 256)) * 4)  # no encoding's text looks like this
    with pytest.raises(EncodingUnclear) as caught:
        detect(path)
    assert REFUSAL.fullmatch(str(caught.value))
    assert "might be" not in str(caught.value)


def test_an_untrusted_guess_is_refused_and_named(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(bytes([0xC0, 0x41]) * 100)  # reads as some East Asian codepage
    with pytest.raises(EncodingUnclear) as caught:
        detect(path)
    message = str(caught.value)
    assert REFUSAL.fullmatch(message)
    assert "(it might be " in message


def test_a_windows_1258_reading_full_of_mojibake_is_refused(tmp_path):
    # Two clean Vietnamese lines, then bytes that read as nonsense in any codepage: the
    # detector's best answer is cp1258, but not a confident one (chaos above 0.1).
    names = to_cp1258("Nguyễn Văn Ước, Đặng Thị Hương, Phan Rang–Tháp Chàm, Bác Ái\n")
    path = tmp_path / "list.csv"
    path.write_bytes(names * 2 + b"\x9b\xcd\xca\x9f\xd5\xb4\xc9\xf1\x97\xe2\xd1\xbd")
    with pytest.raises(EncodingUnclear) as caught:
        detect(path)
    assert "(it might be cp1258)" in str(caught.value)
