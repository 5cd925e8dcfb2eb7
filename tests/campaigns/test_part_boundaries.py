"""Part counts at the exact edges where an escape or surrogate pair meets a part's end.

Worked by hand from ../shared/reference/sms-text.md: a split part holds 153 septets (GSM)
or 67 UTF-16 units (UCS-2), and a pair that does not fit moves whole to the next part.
"""

from __future__ import annotations

import unicodedata

from campaigns.text import Encoding, Segments, forcing_ucs2, segments


def test_an_empty_text_costs_nothing():
    assert segments("") == Segments(Encoding.GSM7, 0, 0)


def test_an_escape_pair_that_ends_a_part_exactly_stays_in_it():
    # 151 + 2 = 153 fills part one; the 153 after it fill part two.
    assert segments("a" * 151 + "€" + "a" * 153) == Segments(Encoding.GSM7, 2, 306)


def test_a_part_started_by_a_moved_escape_pair_holds_the_pair_and_151_more():
    # 152 in part one; '€' moves: part two holds it (2) and 151 more = 153; 1 left over.
    assert segments("a" * 152 + "€" + "a" * 151) == Segments(Encoding.GSM7, 2, 305)
    assert segments("a" * 152 + "€" + "a" * 152).parts == 3


def test_a_surrogate_pair_that_ends_a_part_exactly_stays_in_it():
    # 65 + 2 = 67 fills part one; 67 more fill part two.
    assert segments("ư" * 65 + "😀" + "ư" * 67) == Segments(Encoding.UCS2, 2, 134)


def test_a_part_started_by_a_moved_surrogate_pair_holds_the_pair_and_65_more():
    assert segments("ư" * 66 + "😀" + "ư" * 65) == Segments(Encoding.UCS2, 2, 133)


def test_the_first_character_outside_the_bmp_costs_two_units():
    # U+10000 is the first astral code point: two UTF-16 units, like any emoji.
    assert segments("ư" * 66 + "\U00010000" + "ư" * 66).parts == 3


def test_the_last_bmp_character_costs_one_unit():
    # U+FFFF is inside the BMP: one unit, so 1 + 64 + 2 fills part one exactly.
    assert segments("\uffff" + "ư" * 64 + "😀" + "ư" * 67) == Segments(Encoding.UCS2, 2, 134)


def test_the_characters_forcing_ucs2_are_listed_once_in_order():
    assert forcing_ucs2("Bộ Y tế đề nghị, đề nghị") == ["ộ", "ế", "đ", "ề", "ị"]
    assert forcing_ucs2(unicodedata.normalize("NFD", "Bộ Y tế")) == ["ộ", "ế"]
    assert forcing_ucs2("à è é ì ò ù É €") == []
