"""Routing rules in the campaign file, and the planner that applies them per number."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.plan import PlannedMessage, Planner, RejectedRow
from campaigns.recipients import ListRow
from campaigns.routing import NO_ROUTE, RoutingSpec
from campaigns.spec import CampaignSpec, SpecError, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BLUEZONE = load_spec(EXAMPLES / "bluezone.toml")

ROUTING = {
    "carriers": {"viettel": "gateway-viettel", "mobifone": "gateway-mobi"},
    "countries": {"kr": "intl-kr", "other": "intl"},
    "fallback": ["gateway-backup", "intl"],
}
#: A Vietnamese number per carrier, a Korean and a German one.
NUMBERS = {
    "viettel": "0961234567",
    "mobifone": "0901234567",
    "vinaphone": "0912345678",
    "korea": "+82 10 1234 5678",
    "germany": "+49 1512 3456789",
}


def routed(**routing) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {**BLUEZONE.model_dump(mode="json"), "provider": "gateway", "routing": routing}
    )


def test_each_number_takes_the_first_route_that_applies():
    router = routed(**ROUTING).router()
    assert router.route("VN", "viettel") == "gateway-viettel"  # by carrier
    assert router.route("VN", "mobifone") == "gateway-mobi"
    assert router.route("VN", "vinaphone") == "gateway"  # no carrier route: the default
    assert router.route("KR", None) == "intl-kr"  # its country's route
    assert router.route("DE", None) == "intl"  # any other country
    # Without an `other` route, a foreign number takes the default like any other.
    assert routed(carriers={"viettel": "x"}).router().route("DE", None) == "gateway"


def test_a_provider_is_never_given_a_number_it_cannot_reach():
    reach = {"gateway": frozenset({"VN"}), "gateway-viettel": frozenset({"VN"})}
    router = routed(carriers={"viettel": "gateway-viettel"}).router(reach)
    assert router.route("VN", "viettel") == "gateway-viettel"
    assert router.route("KR", None) is None  # the default reaches Vietnam only: no route
    assert routed(countries={"other": "intl"}).router(reach).route("KR", None) == "intl"


def test_the_planner_routes_rejects_the_unreachable_and_counts_per_provider():
    reach = {"gateway": frozenset({"VN"}), "gateway-viettel": frozenset({"VN"})}
    spec = routed(carriers={"viettel": "gateway-viettel"})
    planner = Planner(spec, router=spec.router(reach))
    rows = [ListRow(i + 2, number, ()) for i, number in enumerate(NUMBERS.values())]
    decisions = list(planner.plan(rows))

    assert [(d.e164[:5], d.provider) for d in decisions if isinstance(d, PlannedMessage)] == [
        ("+8496", "gateway-viettel"),
        ("+8490", "gateway"),
        ("+8491", "gateway"),
    ]
    assert [d.reason for d in decisions if isinstance(d, RejectedRow)] == [NO_ROUTE, NO_ROUTE]
    summary = planner.summary
    assert summary.rejected[NO_ROUTE] == 2
    assert summary.rows_read == summary.planned + summary.rejected_total == 5
    plan = summary.as_dict()
    assert plan["providers"] == {
        "gateway": {"recipients": 2, "parts": 6},
        "gateway-viettel": {"recipients": 1, "parts": 3},
    }
    assert {(line["provider"], line["carrier"]) for line in plan["by_provider"]} == {
        ("gateway", "mobifone"),
        ("gateway", "vinaphone"),
        ("gateway-viettel", "viettel"),
    }
    assert plan["routing"] == [
        {"rule": "carrier", "value": "viettel", "provider": "gateway-viettel"},
        {"rule": "default", "value": "", "provider": "gateway"},
    ]


def test_ported_numbers_are_routed_by_the_carrier_that_serves_them_now():
    spec = routed(carriers={"viettel": "gateway-viettel"})
    ported = {"+84901234567": "viettel"}  # a MobiFone prefix, now on Viettel
    (message,) = Planner(spec, carriers=ported).plan([ListRow(2, NUMBERS["mobifone"], ())])
    assert (message.carrier, message.provider) == ("viettel", "gateway-viettel")


def test_fallbacks_skip_the_halted_provider_itself_and_other_halted_ones():
    router = routed(**ROUTING).router()
    assert router.fallback_for("gateway", set()) == ["gateway-backup", "intl"]
    assert router.fallback_for("gateway-backup", set()) == ["intl"]
    assert router.fallback_for("gateway", {"gateway-backup"}) == ["intl"]


def test_named_lists_every_provider_with_the_field_that_names_it():
    named = list(routed(**ROUTING).router().named())
    assert ("provider", "gateway") in named
    assert ("routing.carriers.viettel", "gateway-viettel") in named
    assert ("routing.countries.KR", "intl-kr") in named
    assert ("routing.fallback[1]", "intl") in named


def test_a_single_fallback_may_be_written_as_a_string():
    assert RoutingSpec.model_validate({"fallback": "backup"}).fallback == ("backup",)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('carriers = { viettell = "x" }', "routing.carriers: unknown carrier 'viettell'"),
        ('countries = { Korea = "x" }', "'Korea' is not a two-letter country code"),
        ('fallback = ["a", "a"]', "a provider is named twice"),
        ('default = "x"', "routing.default: unknown key"),
    ],
)
def test_a_bad_routing_table_is_named(tmp_path, table, needle):
    text = (EXAMPLES / "bluezone.toml").read_text(encoding="utf-8")
    path = tmp_path / "campaign.toml"
    path.write_text(text.replace("[prices]", f"[routing]\n{table}\n\n[prices]"), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert needle in message and message.startswith(str(path))


def test_a_routed_spec_survives_the_ledger_round_trip():
    spec = routed(**ROUTING)
    again = CampaignSpec.model_validate(spec.model_dump(mode="json"))
    assert again.routing == spec.routing
    assert again.router().route("KR", None) == "intl-kr"
