"""A campaign's channels in its file (``campaigns.channels``): the rules a list of channels
keeps, each refusal naming the field, and the plan's figures per channel."""

from __future__ import annotations

import pytest

from campaigns.channels import channel_plan
from campaigns.spec import CampaignSpec
from tests.worker.test_dispatch import SPEC

ZALO = {"kind": "template", "name": "zalo", "provider": "zalo", "template": "231432",
        "params": {"ten": "{name}"}, "price": 200}  # fmt: skip
SMS = {"kind": "text"}


def spec(channels) -> CampaignSpec:
    return CampaignSpec.model_validate({**SPEC.model_dump(mode="json"), "channels": channels})


@pytest.mark.parametrize(
    ("channels", "said"),
    [
        ([], "at least one channel"),
        ([SMS, ZALO], "comes once, and last"),
        ([ZALO, SMS, {"kind": "text", "name": "sms2"}], "comes once, and last"),
        ([ZALO, {**ZALO, "template": "9"}, SMS], "names must differ: zalo"),
        ([{**ZALO, "params": {"tên": "{name}"}}, SMS], "not a template parameter's name"),
        ([{**ZALO, "params": {"ten": "{name"}}, SMS], "ten:"),
        ([{**ZALO, "params": {"ten": "  "}}, SMS], "ten: empty"),
        ([{**ZALO, "deliver_within": "30s"}, SMS], "duration"),
        ([{**ZALO, "deliver_within": "2d"}, SMS], "between 1m and 1d"),
        ([{**ZALO, "when_halted": "later"}, SMS], "when_halted"),
        ([{**ZALO, "template": ""}, SMS], "template"),
        ([{**ZALO, "price": -1}, SMS], "price"),
        ([{**ZALO, "colour": "blue"}, SMS], "colour"),
        ([{"kind": "voice"}, SMS], "kind"),
    ],
)
def test_a_list_of_channels_that_breaks_a_rule_is_refused_saying_which(channels, said):
    with pytest.raises(ValueError, match="channels") as refused:
        spec(channels)
    assert said in str(refused.value)


def test_without_channels_a_campaign_has_its_sms_alone():
    assert [c.kind for c in SPEC.channel_list] == ["text"]
    two = spec([ZALO, SMS])
    assert two.template_channel("zalo")[0] == 0 and two.template_channel("sandbox") is None
    assert two.channel_list[0].fields == ["name"]


def test_the_plan_per_channel_adds_up():
    """1,000 recipients, SMS 3 parts each at 800 ₫ (2,400,000 ₫), Zalo 200 ₫ a delivery,
    70 % reached by Zalo."""
    plan = channel_plan(spec([ZALO, SMS]).channel_list, 1000, 2_400_000.0, 3000, 0.7,
                        {"zalo": 400})  # fmt: skip
    zalo, sms = plan["channels"]
    assert (zalo["messages"], zalo["cost"], sms["parts"], sms["cost"]) == (
        1000,
        200_000.0,
        3000,
        2_400_000.0,
    )
    assert plan["worst"] == 2_400_000.0  # nobody on Zalo: Zalo bills nothing undelivered
    assert plan["worst_with_doubles"] == 2_600_000.0
    assert plan["expected"] == round(200_000 * 0.7 + 2_400_000 * 0.3, 2) == 860_000.0
    assert plan["saved"] == plan["sms_for_everyone"] - plan["expected"] == 1_540_000.0
    assert (zalo["days"], zalo["beyond_quota"]) == (3, 600)


def test_without_prices_the_plan_says_unknown_not_zero():
    plan = channel_plan(spec([{**ZALO, "price": None}, SMS]).channel_list, 10, None, 10, 0.5)
    assert plan["channels"][0]["cost"] is None
    assert plan["expected"] is None and plan["saved"] is None


def test_two_template_channels_on_one_provider_are_refused():
    """A batch holds one provider's messages, and its provider says which channel (and
    template) they are: two channels through one instance would send one's template for
    the other's messages."""
    with pytest.raises(ValueError, match="two template channels send through provider 'zalo'"):
        spec([ZALO, {**ZALO, "name": "zalo-b", "template": "99"}, SMS])
