"""Edges of the phone rules the main tests leave open: how a cell must look to be a number,
the trunk 0 before a legacy number, masking in free text, and the ported-number CSV.

Expectations worked by hand from ../shared/reference/vietnam.md and ``mask``'s rule (five
characters, stars, two).
"""

from __future__ import annotations

import pytest

from campaigns.phones import (
    Phone,
    PhoneRejected,
    Reject,
    load_carrier_overrides,
    mask,
    mask_text,
    normalise,
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("x912345678", Reject.NOT_A_NUMBER),  # a letter where the '+' would be
        ("X0912345678", Reject.NOT_A_NUMBER),  # only an apostrophe is Excel's text mark
        ("+84 912 abc", Reject.NOT_A_NUMBER),
        ("+x84912345678", Reject.NOT_A_NUMBER),  # a '+' must be followed by digits only
        ("091234567", Reject.WRONG_LENGTH),  # a digit dropped: not an unknown prefix
        ("09123456789", Reject.WRONG_LENGTH),  # a digit too many after a valid prefix
        ("0912 345 678.0", Reject.WRONG_LENGTH),  # '.0' is Excel's float only after bare digits
    ],
)
def test_cells_that_only_look_like_numbers_are_rejected_for_the_right_reason(raw, reason):
    with pytest.raises(PhoneRejected) as caught:
        normalise(raw)
    assert caught.value.reason is reason
    assert str(caught.value) == reason.value  # the stable code is also the message


def test_a_trailing_zero_group_is_a_digit_not_excels_float():
    assert normalise("091234567-.0").e164 == "+84912345670"


@pytest.mark.parametrize("raw", ["+84 01662345678", "0084 01662345678", "+84 (0)1662345678"])
def test_a_legacy_number_behind_the_country_code_and_trunk_0_is_converted(raw):
    assert normalise(raw) == Phone("+84362345678", "VN", "viettel", True)


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+84912345678", "+8491*****78"),
        ("+8412345", "+8412*45"),  # eight characters: the shortest that keeps any
        ("+841234", "*******"),  # seven or fewer: nothing shown
        ("+84", "***"),
    ],
)
def test_mask_shows_five_and_two_only_when_longer_than_seven(e164, masked):
    assert mask(e164) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("gửi tới 0912 345 678 lỗi", "gửi tới 09123***78 lỗi"),
        ("to=+84 912 345 678", "to=+8491*****78"),
        ("to=0912.345.678,", "to=09123***78,"),
        ("bare 912345678 here", "bare 91234**78 here"),
        ("campaign chaos-redis-2026113001203", "campaign chaos-redis-2026113001203"),
        ("order 123456789", "order 123456789"),
        ("no number", "no number"),
    ],
)
def test_mask_text_masks_numbers_and_leaves_other_digit_runs(text, masked):
    assert mask_text(text) == masked


def test_ported_list_with_bom_and_no_header_keeps_its_first_number(tmp_path):
    path = tmp_path / "ported.csv"
    path.write_bytes("0912345678,viettel\r\n+84987654321,mobifone\r\n".encode("utf-8-sig"))
    assert load_carrier_overrides(path) == {"+84912345678": "viettel", "+84987654321": "mobifone"}


def test_blank_rows_of_a_ported_list_are_skipped_not_the_end(tmp_path):
    path = tmp_path / "ported.csv"
    path.write_text("number,carrier\n0912345678,viettel\n\n , \n0987654321,mobifone\n")
    assert load_carrier_overrides(path) == {"+84912345678": "viettel", "+84987654321": "mobifone"}


def test_a_short_row_of_a_ported_list_is_named(tmp_path):
    path = tmp_path / "ported.csv"
    path.write_text("number,carrier\n0912345678\n")
    with pytest.raises(ValueError, match=r"ported\.csv: row 2: expected number,carrier$"):
        load_carrier_overrides(path)


def test_an_unknown_carrier_lists_the_known_ones(tmp_path):
    path = tmp_path / "ported.csv"
    path.write_text("0912345678,telstra\n")
    known = "gmobile, itelecom, mobifone, reddi, vietnamobile, viettel, vinaphone"
    with pytest.raises(ValueError) as caught:
        load_carrier_overrides(path)
    assert str(caught.value).endswith(f"row 1: unknown carrier 'telstra' (known: {known})")


def test_a_missing_ported_list_is_named(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(ValueError, match=r"absent\.csv: cannot read ported-number list"):
        load_carrier_overrides(path)


@pytest.mark.parametrize(
    "name",
    ["sdt0912345678.csv", "optout_0912345678.csv", "0912345678_tu-choi.xlsx", "KH0912345678",
     "０９１２３４５６７８", "dnc-0912 345 678.csv", "+84912345678"],
)  # fmt: skip
def test_a_number_in_a_name_is_masked_even_glued_to_words(name):
    from campaigns.phones import mask_in_names

    masked = mask_in_names(name)
    assert "345" not in masked and "３４５" not in masked, masked
    assert mask_in_names("chaos-redis-2026113001203.csv") == "chaos-redis-2026113001203.csv"
