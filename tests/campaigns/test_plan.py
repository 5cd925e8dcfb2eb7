from pathlib import Path

import pytest

from benchmarks.generate_list import write as write_list
from campaigns.numbers import NumberSet
from campaigns.plan import (
    DUPLICATE,
    FREQUENCY_CAP,
    MISSING_FIELD,
    PlanError,
    PlannedMessage,
    Planner,
    RejectedRow,
)
from campaigns.recipients import ListRow, open_list
from campaigns.spec import CampaignSpec, load_spec
from campaigns.text import Encoding

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BLUEZONE = load_spec(EXAMPLES / "bluezone.toml")
AD = load_spec(EXAMPLES / "ad-sale.toml")
COLUMNS = ["Họ và tên", "Huyện/Thành phos"]


def spec(**changes) -> CampaignSpec:
    return CampaignSpec.model_validate({**BLUEZONE.model_dump(mode="json"), **changes})


def test_the_plan_accounts_for_every_row(tmp_path):
    path = tmp_path / "residents.csv"
    write_list(path, 3000, seed=7)
    opened = open_list(path)
    planner = Planner(BLUEZONE, opened.columns)
    decisions = list(planner.plan(opened.rows()))
    summary = planner.summary
    assert len(decisions) == summary.rows_read == 3000
    planned = [d for d in decisions if isinstance(d, PlannedMessage)]
    rejected = [d for d in decisions if isinstance(d, RejectedRow)]
    assert summary.planned == len(planned)
    assert summary.duplicates == sum(d.reason == DUPLICATE for d in rejected) > 0
    assert summary.rejected_total == len(rejected) - summary.duplicates > 0
    assert summary.legacy_converted > 0
    assert len({d.e164 for d in planned}) == len(planned)
    assert all(d.encoding == Encoding.UCS2 and d.parts == 3 for d in planned)
    assert summary.parts == 3 * len(planned) == sum(line.parts for line in summary.lines.values())
    by_line = {line["carrier"]: line for line in summary.as_dict()["by_provider"]}
    assert by_line["viettel"]["cost"] == 800 * sum(
        d.parts for d in planned if d.carrier == "viettel"
    )
    assert by_line["gmobile"]["cost"] == 850 * by_line["gmobile"]["parts"]  # the default price


def test_the_language_column_picks_the_text():
    rows = [ListRow(2, "0912345678", ("en",)), ListRow(3, "0987654321", ("ko",))]
    planned = list(Planner(BLUEZONE, ["language"]).plan(rows))
    assert [(p.language, p.encoding) for p in planned] == [
        ("en", Encoding.GSM7),
        ("vi", Encoding.UCS2),
    ]


def test_template_fields_come_from_the_list_and_empty_ones_are_rejected_with_the_row():
    campaign = spec(messages={"vi": "Kính gửi {name} ở {district}: hãy cài Bluezone."})
    rows = [
        ListRow(2, "0912345678", ("Đặng Thị Hương", "Ninh Hải")),
        ListRow(3, "0987654321", ("  ", "Bác Ái")),
    ]
    planner = Planner(campaign, ["Họ và tên", "Huyện"])
    planned, missing = list(planner.plan(rows))
    assert planned.parts == 1 and planned.encoding == Encoding.UCS2
    assert missing == RejectedRow(3, MISSING_FIELD, "0987654321")
    assert (
        campaign.template("vi")
        .render(("Đặng Thị Hương", "Ninh Hải"))
        .startswith("Kính gửi Đặng Thị Hương ở Ninh Hải")
    )


def test_a_template_field_with_no_column_is_found_before_any_row():
    with pytest.raises(PlanError, match=r"\{district\}.*\[columns\]"):
        Planner(spec(messages={"vi": "Chào {district}"}), ["Họ và tên"])


def test_suppression_lists_and_the_advertising_cap():
    rows = [ListRow(i + 2, f"09123456{i:02d}", ("An", "Ninh Hải")) for i in range(4)]
    planner = Planner(
        AD,
        ["Họ và tên", "Huyện/Thành phố"],
        suppressed={"dnc": NumberSet(["+84912345600"]), "opt_out": NumberSet(["+84912345601"])},
        capped=NumberSet(["+84912345602"]),
    )
    reasons = [getattr(d, "reason", "planned") for d in planner.plan(rows)]
    assert reasons == ["dnc", "opt_out", FREQUENCY_CAP, "planned"]
    assert planner.summary.suppressed_total == 3


def test_a_public_service_campaign_ignores_the_dnc_register_by_default():
    rows = [ListRow(2, "0912345600", ())]
    planner = Planner(BLUEZONE, [], suppressed={"dnc": NumberSet(["+84912345600"])})
    assert isinstance(next(planner.plan(rows)), PlannedMessage)


def test_ported_numbers_take_their_real_carrier():
    rows = [ListRow(2, "0912345600", ())]
    planned = next(Planner(BLUEZONE, [], carriers={"+84912345600": "viettel"}).plan(rows))
    assert planned.carrier == "viettel"  # allocated to VinaPhone, ported since


def test_khong_dau_is_applied_to_fields_too_and_reported():
    rows = [ListRow(2, "0912345678", ("Đặng Thị Hương", "Ninh Hải"))]
    planner = Planner(AD, ["Họ và tên", "Huyện/Thành phố"])
    planned = next(planner.plan(rows))
    assert planned.encoding == Encoding.GSM7
    assert planner.summary.khong_dau == ["vi"]
    assert (
        AD.template("vi")
        .render(("Đặng Thị Hương", "Ninh Hải"))
        .startswith("[QC] Kinh gui Dang Thi Huong:")
    )
