from datetime import timedelta
from pathlib import Path

import pytest

from campaigns.spec import CampaignSpec, SpecError, load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml"

VALID = """
id = "test-campaign"
name = "Thử nghiệm"
category = "public_service"
brandname = "NinhThuan"
provider = "sandbox"
validity = "12h"
[messages]
vi = "Xin chào"
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_campaign_is_valid():
    spec = load_spec(EXAMPLE)
    assert spec.validity == timedelta(hours=12)
    assert "Bluezone" in spec.messages["vi"].text


def test_a_stored_spec_validates_again():
    spec = load_spec(EXAMPLE)
    assert CampaignSpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('brandname = "NinhThuan"', 'brandname = "Ninh Thuan Province"'), "brandname"),
        (('brandname = "NinhThuan"', 'brandname = "12345"'), "brandname"),
        (('category = "public_service"', 'category = "spam"'), "category"),
        (('validity = "12h"', 'validity = "soon"'), "validity"),
        (('validity = "12h"', 'validity = "30d"'), "validity"),
        (('id = "test-campaign"', 'id = "Có dấu"'), "id"),
        (('vi = "Xin chào"', 'vi = "  "'), "messages"),
        # Only zero-width and control characters: shows nothing, billed all the same.
        (('vi = "Xin chào"', 'vi = "\\u200b\\u200c\\u2060 \\u00a0"'), "messages"),
        (('provider = "sandbox"', 'provider = "sandbox"\nprovidr = "x"'), "providr"),
        (('name = "Thử nghiệm"\n', ""), "name"),
    ],
)
def test_a_bad_field_is_named_with_the_file(tmp_path, change, field):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert field in message


def test_missing_and_invalid_files_are_named(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="invalid TOML"):
        load_spec(write(tmp_path, "id = "))


def test_default_language_must_have_a_text(tmp_path):
    with pytest.raises(SpecError, match="default_language"):
        load_spec(
            write(tmp_path, VALID.replace("[messages]", 'default_language = "en"\n[messages]'))
        )


def test_a_validity_that_ends_before_the_first_sending_hour_is_found(tmp_path):
    from datetime import datetime

    from campaigns.hours import VIETNAM

    text = VALID.replace('validity = "12h"', 'validity = "6h"\nsending_hours = "07:00-21:00"')
    spec = load_spec(write(tmp_path, text))
    night = datetime(2026, 11, 30, 21, 50, tzinfo=VIETNAM)
    first, end = spec.expires_unsent(night)
    assert (first, end) == (datetime(2026, 12, 1, 7, 0, tzinfo=VIETNAM), night + timedelta(hours=6))
    assert spec.expires_unsent(datetime(2026, 11, 30, 20, 0, tzinfo=VIETNAM)) is None  # open
    assert spec.expires_unsent(datetime(2026, 12, 1, 2, 0, tzinfo=VIETNAM)) is None  # 07:00 < 08:00
    assert load_spec(write(tmp_path, VALID)).expires_unsent(night) is None  # no hours at all


@pytest.mark.parametrize(
    ("validity", "accepted"),
    [("7d", True), ("168h", True), ("169h", False), ("8d", False), ("0h", False)],
)
def test_validity_runs_up_to_seven_days_included(tmp_path, validity, accepted):
    """A message may wait at most a week (MAX_VALIDITY), the edge included."""
    path = write(tmp_path, VALID.replace('validity = "12h"', f'validity = "{validity}"'))
    if accepted:
        assert load_spec(path).validity <= timedelta(days=7)
    else:
        with pytest.raises(SpecError, match="validity"):
            load_spec(path)
