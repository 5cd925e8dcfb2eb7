"""NumberSet keeps eight numbers in each byte of a range's bitmap: neighbours must not
disturb each other, and a discard of an absent number changes nothing."""

from __future__ import annotations

from campaigns.numbers import NumberSet

# Consecutive numbers: the same byte of the +8432 bitmap.
FIRST, SECOND = "+84320000000", "+84320000001"


def test_neighbours_in_one_byte_are_both_kept():
    numbers = NumberSet([FIRST, SECOND])
    assert FIRST in numbers and SECOND in numbers
    assert list(numbers) == [FIRST, SECOND]


def test_discarding_one_neighbour_keeps_the_other():
    numbers = NumberSet([FIRST, SECOND])
    numbers.discard(FIRST)
    assert list(numbers) == [SECOND] and len(numbers) == 1
    numbers.discard(SECOND)
    assert list(numbers) == [] and len(numbers) == 0


def test_discarding_an_absent_number_changes_nothing():
    numbers = NumberSet([FIRST])
    numbers.discard(SECOND)  # its range exists, it does not
    numbers.discard("+84912345678")  # its range does not exist
    numbers.discard("+12025550123")
    assert list(numbers) == [FIRST] and len(numbers) == 1


def test_a_foreign_number_as_long_as_a_vietnamese_one_is_found():
    numbers = NumberSet(["+12025550123"])  # 12 characters, like +84 and nine digits
    assert "+12025550123" in numbers and "+12025550124" not in numbers
    assert list(numbers) == ["+12025550123"]
