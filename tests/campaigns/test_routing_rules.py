"""Routing as the plan applies and shows it: a carrier route is for Vietnamese numbers
only, and ``loa campaign plan`` lists every route in the order it applies."""

from __future__ import annotations

from campaigns.phones import load_carrier_overrides
from campaigns.plan import PlannedMessage, Planner
from campaigns.recipients import ListRow
from tests.campaigns.test_routing import ROUTING, routed


def test_a_ported_foreign_number_is_not_routed_by_a_vietnamese_carrier(tmp_path):
    """A ported-number list may name a foreign number by mistake; a Vietnamese carrier's
    gateway must still not be handed a Korean number: its country's route applies."""
    ported = tmp_path / "ported.csv"
    ported.write_text("number,carrier\n+82 10 1234 5678,viettel\n0901234567,viettel\n")
    spec = routed(carriers={"viettel": "gateway-viettel"}, countries={"other": "intl"})
    planner = Planner(spec, carriers=load_carrier_overrides(ported))
    rows = [ListRow(2, "+82 10 1234 5678", ()), ListRow(3, "0901234567", ())]
    decisions = [d for d in planner.plan(rows) if isinstance(d, PlannedMessage)]
    assert [(d.country, d.provider) for d in decisions] == [
        ("KR", "intl"),
        ("VN", "gateway-viettel"),  # a MobiFone prefix, ported to Viettel
    ]


def test_the_plan_lists_every_route_in_the_order_it_applies():
    spec = routed(**ROUTING)
    planner = Planner(spec)
    list(planner.plan([ListRow(2, "0961234567", ())]))
    assert planner.summary.as_dict()["routing"] == [
        {"rule": "carrier", "value": "viettel", "provider": "gateway-viettel"},
        {"rule": "carrier", "value": "mobifone", "provider": "gateway-mobi"},
        {"rule": "country", "value": "KR", "provider": "intl-kr"},
        {"rule": "other_countries", "value": "", "provider": "intl"},
        {"rule": "default", "value": "", "provider": "gateway"},
        {"rule": "fallback", "value": "1", "provider": "gateway-backup"},
        {"rule": "fallback", "value": "2", "provider": "intl"},
    ]
