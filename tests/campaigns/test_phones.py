import pytest

from campaigns.phones import Phone, PhoneRejected, Reject, mask, normalise


@pytest.mark.parametrize(
    "raw",
    [
        "+84912345678",
        "84912345678",
        "0084912345678",
        "0912345678",
        "912345678",
        "0912 345 678",
        "0912.345.678",
        "091-234-5678",
        "(091) 234-5678",
        "+84 (0)912 345 678",
        "+84 0912 345 678",  # the trunk 0 after the country code, without brackets
        "0084 0912345678",
        "840912345678",
        "'0912345678",
        "912345678.0",
        "０９１２３４５６７８",  # full-width digits
        "0912\u00a0345\u00a0678",  # no-break spaces
        " +84 912 345 678 ",
    ],
)
def test_every_way_of_writing_one_number_gives_the_same_e164(raw):
    assert normalise(raw) == Phone(e164="+84912345678", country="VN", carrier="vinaphone")


@pytest.mark.parametrize(
    ("raw", "e164", "carrier"),
    [
        ("01662345678", "+84362345678", "viettel"),
        ("841212345678", "+84792345678", "mobifone"),
        ("+841882345678", "+84582345678", "vietnamobile"),
    ],
)
def test_legacy_eleven_digit_numbers_are_converted_and_flagged(raw, e164, carrier):
    phone = normalise(raw)
    assert (phone.e164, phone.carrier, phone.legacy) == (e164, carrier, True)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", Reject.EMPTY),
        ("   ", Reject.EMPTY),
        (None, Reject.EMPTY),
        ("chưa có", Reject.NOT_A_NUMBER),
        ("0912 345 67x", Reject.NOT_A_NUMBER),
        ("0259 3822 123", Reject.LANDLINE),
        ("02593822123", Reject.LANDLINE),
        ("09123456", Reject.WRONG_LENGTH),
        ("0912345678901", Reject.WRONG_LENGTH),
        ("0112345678", Reject.UNALLOCATED_PREFIX),
        ("0612345678", Reject.UNALLOCATED_PREFIX),
        ("01112345678", Reject.UNALLOCATED_PREFIX),
        ("+1 555", Reject.INVALID_FOREIGN),
    ],
)
def test_unusable_cells_are_rejected_with_a_stable_reason(raw, reason):
    with pytest.raises(PhoneRejected) as caught:
        normalise(raw)
    assert caught.value.reason is reason


def test_foreign_numbers_keep_their_country():
    assert normalise("+82 10-2345-6789") == Phone(e164="+821023456789", country="KR")


def test_mask_keeps_only_enough_to_tell_numbers_apart():
    assert mask("+84912345678") == "+8491*****78"
    assert "2345" not in mask("+821023456789")


def test_ported_numbers_are_read_from_the_operators_csv(tmp_path):
    from campaigns.phones import load_carrier_overrides

    path = tmp_path / "ported.csv"
    path.write_text(
        "number,carrier\n0912 345 678,Viettel\n+84987654321,mobifone\n", encoding="utf-8"
    )
    assert load_carrier_overrides(path) == {"+84912345678": "viettel", "+84987654321": "mobifone"}
    path.write_text("number,carrier\n0912345678,telstra\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"row 2: unknown carrier 'telstra'"):
        load_carrier_overrides(path)
    path.write_text("0912345678,viettel\nchưa có,viettel\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"row 2: not_a_number"):
        load_carrier_overrides(path)
