import pytest

from campaigns.spec import CampaignSpec
from campaigns.template import Template, TemplateError, fields_of, khong_dau


def test_khong_dau():
    assert khong_dau("Đề nghị cài đặt ứng dụng Bluezone") == "De nghi cai dat ung dung Bluezone"
    assert khong_dau("bạn bán bàn") == "ban ban ban"  # why it is never silent


@pytest.mark.parametrize(
    "bad", ["{0}", "{name.__class__}", "{name[0]}", "{name!r}", "{name:>30}", "{name", "}"]
)
def test_only_plain_names_are_placeholders(bad):
    with pytest.raises(TemplateError):
        fields_of(f"Chào {bad}")


def test_values_are_inserted_as_text_never_formatted_again():
    template = Template.compile("Chào {name}, mã {{ABC}}")
    assert template.render(("{name.__class__}\n  x",)) == "Chào {name.__class__} x, mã {ABC}"
    assert Template.compile("Mã {{ABC}}").render() == "Mã {ABC}"


def test_a_bad_placeholder_in_a_campaign_names_the_language():
    with pytest.raises(ValueError, match=r"vi: placeholder \{name!r\}"):
        CampaignSpec.model_validate(
            {"id": "x", "name": "x", "category": "public_service", "brandname": "X", "provider": "sandbox",
             "messages": {"vi": "Chào {name!r}"}}
        )  # fmt: skip


def test_khong_dau_folds_typography_to_plain_gsm():
    """One curly quote or dash once kept the cheap version in UCS-2 (three parts, not one)."""
    from campaigns.text import Encoding, segments

    text = "Hãy cài “Bluezone” – bảo vệ mình…\u00a0ngay\u200b ‘hôm nay’"
    plain = khong_dau(text)
    assert plain == "Hay cai \"Bluezone\" - bao ve minh... ngay 'hom nay'"
    assert segments(plain).encoding is Encoding.GSM7


def test_khong_dau_drops_what_a_phone_shows_as_nothing():
    """A soft hyphen (Word puts them in), direction marks and overrides kept the cheap
    version in UCS-2: each is a format character, invisible on a phone, and dropped."""
    from campaigns.text import Encoding, segments

    text = "Cài\u00adđặt \u200eBluezone\u200f \u202angay\u202c \u2066nhé\u2069"
    plain = khong_dau(text)
    assert plain == "Caidat Bluezone ngay nhe"
    assert segments(plain).encoding is Encoding.GSM7
