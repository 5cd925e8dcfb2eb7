import unicodedata

import pytest

from campaigns.text import Encoding, segments


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, Encoding.GSM7, 1),
        ("a" * 161, Encoding.GSM7, 2),
        ("a" * 306, Encoding.GSM7, 2),
        ("a" * 307, Encoding.GSM7, 3),
        ("€" * 80, Encoding.GSM7, 1),  # extension characters cost two septets
        ("€" * 81, Encoding.GSM7, 2),
        ("ư" * 70, Encoding.UCS2, 1),
        ("ư" * 71, Encoding.UCS2, 2),
        ("Bộ Y tế đề nghị", Encoding.UCS2, 1),
        ("à è é ì ò ù É", Encoding.GSM7, 1),
    ],
)
def test_encoding_and_parts(text, encoding, parts):
    result = segments(text)
    assert (result.encoding, result.parts) == (encoding, parts)


def test_an_escape_pair_is_never_split_across_parts():
    # 152 plain septets, then '€' (2 septets) does not fit in the first 153: it moves whole.
    text = "a" * 152 + "€" + "a" * 152
    assert segments(text).units == 306
    assert segments(text).parts == 3


def test_a_surrogate_pair_is_never_split_across_parts():
    text = "ư" * 66 + "😀" + "ư" * 66  # the emoji would straddle units 67 and 68
    assert segments(text).parts == 3


def test_nfd_input_is_counted_as_nfc():
    nfc = "Đề nghị cài đặt Bluezone " * 2
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) > len(nfc)
    assert segments(nfd) == segments(nfc)
