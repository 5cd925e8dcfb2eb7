"""Provider limits in the plan: a text its route's provider would refuse stops `loa campaign
plan` and `launch` (exit 2, nothing recorded), naming the provider, the limit, the size and
a template's rows; one it only advises against is a warning. Run as an operator does: the
real command, providers from the environment (their limits come from their modules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.limits import Limits
from campaigns.plan import PlanError, Planner
from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from ledger.schema import campaigns, messages
from tests.scripts.test_cli import loa

ACCOUNT = "AC" + "0" * 32
#: A sandbox beside a Twilio instance `intl` (the plan never calls it: a closed port).
ENV = {
    "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
    "LOA_PROVIDERS__INTL__TYPE": "twilio",
    "LOA_PROVIDERS__INTL__ACCOUNT_SID": ACCOUNT,
    "LOA_PROVIDERS__INTL__AUTH_TOKEN": "fake-twilio-token-7f3a9c",
    "LOA_PROVIDERS__INTL__BASE_URL": "http://127.0.0.1:9",
}
#: 1,733 characters of GSM-7: 12 parts, over Twilio's 1,600.
LONG = ("Welcome to Ninh Thuan, stay safe. " * 51).strip()
#: Foreign numbers (routed to `other`), one Vietnamese (the default route).
FOREIGN = ["+82 10 1234 5678", "+49 1512 3456789", "+44 7911 123456"]


def campaign(tmp_path: Path, en: str, other: str = "intl") -> Path:
    """A campaign whose foreign numbers go to ``other`` and Vietnamese ones to the sandbox."""
    path = tmp_path / "campaign.toml"
    path.write_text(
        f"""id = "welcome-limits"
name = "Chào mừng"
category = "public_service"
brandname = "NinhThuan"
provider = "sandbox"
default_language = "vi"
[messages]
vi = "Chào mừng quý khách đến Ninh Thuận"
en = "{en}"
[routing]
countries = {{ other = "{other}" }}
""",
        encoding="utf-8",
    )
    return path


def recipients(tmp_path: Path, names: list[str] | None = None) -> Path:
    names = names or ["Kim", "Hans", "Lee"]
    rows = [f"{number},en,{name}" for number, name in zip(FOREIGN, names, strict=True)]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(["Số điện thoại,language,name", "0912345678,en,An", *rows]) + "\n")
    return path


def test_the_plan_refuses_a_text_longer_than_twilio_takes(tmp_path):
    result = loa(
        "campaign", "plan", str(campaign(tmp_path, LONG)), "-r", str(recipients(tmp_path)),
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert "provider 'intl'" in line and "at most 1.600 characters" in line
    assert "messages.en is 1.733 characters (12 parts)" in line
    assert "for 3 recipients" in line  # the Vietnamese one goes to the sandbox


def test_the_same_text_passes_for_a_provider_without_that_limit(tmp_path):
    spec = campaign(tmp_path, LONG, other="sandbox")
    result = loa("campaign", "plan", str(spec), "-r", str(recipients(tmp_path)), "--json",
                 cwd=tmp_path, env=ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["planned"] == 4 and summary["parts"] == 4 * 12
    assert summary["limit_warnings"] == []


def test_a_templated_text_is_refused_with_the_rows_filled_in_over_the_limit(tmp_path):
    spec = campaign(tmp_path, "Dear {name}, welcome to Ninh Thuan. Please install Bluezone.")
    names = ["Kim " * 420, "Hans", "Lee " * 410]  # rows 3 and 5 over 1,600 once filled in
    result = loa("campaign", "plan", str(spec), "-r", str(recipients(tmp_path, names)),
                 cwd=tmp_path, env=ENV)  # fmt: skip
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "messages.en filled in is over what provider 'intl' takes" in line
    assert "on 2 rows: row 3 (1.733 characters, 12 parts), row 5 (1.693 characters" in line
    assert "row 4" not in line


def test_launch_refuses_it_too_and_records_nothing(tmp_path):
    spec, names = campaign(tmp_path, LONG), recipients(tmp_path)
    result = loa("campaign", "launch", str(spec), "-r", str(names), cwd=tmp_path, env=ENV)
    assert result.returncode == 2 and "provider 'intl'" in result.stderr
    status = loa("campaign", "status", "welcome-limits", cwd=tmp_path, env=ENV)
    assert status.returncode != 0 and "no campaign 'welcome-limits'" in status.stderr


def test_a_text_past_what_twilio_advises_is_planned_with_a_warning(tmp_path):
    spec = campaign(tmp_path, "Dear {name}, welcome to Ninh Thuan.")
    names = ["Kim", "Lee " * 100, "Hans"]  # row 4: 428 characters, over the advised 320
    result = loa("campaign", "plan", str(spec), "-r", str(recipients(tmp_path, names)),
                 cwd=tmp_path, env=ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Cảnh báo · warning: messages.en filled in is over what provider 'intl' advises" in (
        result.stderr
    )
    assert "on 1 row: row 4 (428 characters, 3 parts)" in result.stderr
    as_json = loa("campaign", "plan", str(spec), "-r", str(recipients(tmp_path, names)), "--json",
                  cwd=tmp_path, env=ENV)  # fmt: skip
    (warning,) = json.loads(as_json.stdout)["limit_warnings"]
    assert warning["provider"] == "intl" and warning["limit"] == "advised_characters"
    assert (warning["limit_value"], warning["rows"]) == (320, [4])


def test_a_brandname_longer_than_a_provider_takes_stops_before_any_row():
    spec = CampaignSpec.model_validate(
        {
            "id": "x",
            "name": "x",
            "category": "public_service",
            "brandname": "NinhThuan",
            "provider": "narrow",
            "messages": {"vi": "Chào"},
        }
    )
    with pytest.raises(PlanError, match=r"brandname 'NinhThuan' is 9 .*'narrow'.* at most 6"):
        Planner(spec, limits={"narrow": Limits(max_sender=6)})


def test_parts_are_held_against_a_limit_in_parts():
    spec = CampaignSpec.model_validate(
        {
            "id": "x",
            "name": "x",
            "category": "public_service",
            "brandname": "NinhThuan",
            "provider": "gateway",
            "messages": {"vi": "Đề nghị cài đặt Bluezone " * 6},  # UCS-2, 3 parts
        }
    )
    planner = Planner(spec, limits={"gateway": Limits(max_parts=2)})
    rows = [ListRow(2, "0912345678", ()), ListRow(3, "0987654321", ())]
    with pytest.raises(PlanError, match=r"3 parts\) for 2 recipients .* at most 2 parts"):
        list(planner.plan(rows))
    assert planner.summary.rows_read == 2  # every row was read first


@pytest.fixture
def runtime(tmp_path, sqlite_url):
    from worker.queues.broker import use_broker
    from worker.runtime import Runtime
    from worker.settings import Settings

    prefix = "LOA_PROVIDERS__INTL__"
    intl = {k.removeprefix(prefix).lower(): v for k, v in ENV.items() if k.startswith(prefix)}
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        var_dir=tmp_path,
        providers={"sandbox": {"type": "sandbox"}, "intl": intl},
    )
    runtime = Runtime(settings)
    runtime.ensure_schema()
    use_broker(StubBroker(), settings)
    yield runtime
    runtime.close()


def test_a_list_planned_in_a_child_process_is_refused_the_same(tmp_path, runtime):
    from worker.campaign.launch import launch

    with pytest.raises(PlanError, match=r"provider 'intl', which takes at most 1\.600 characters"):
        launch(runtime, campaign(tmp_path, LONG), recipients(tmp_path), parallel=True)
    with runtime.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 0
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0


#: Korean numbers (routed to `intl`), one per row from row 3 on (row 2 is Vietnamese).
KOREAN = [f"+82 10 2345 {6780 + i}" for i in range(5)]


def sized(tmp_path: Path, lengths: list[int]) -> tuple[Path, Path]:
    """A campaign texting ``Chao {name}`` and a list whose rows 3, 4 … fill it in to these
    lengths (in characters, all GSM-7); row 2 is a Vietnamese number, sent by the sandbox."""
    names = ["a" * (length - len("Chao ")) for length in lengths]
    rows = [f"{number},en,{name}" for number, name in zip(KOREAN, names, strict=False)]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(["Số điện thoại,language,name", "0912345678,en,An", *rows]) + "\n")
    return campaign(tmp_path, "Chao {name}"), path


def plan_sized(tmp_path: Path, lengths: list[int], *extra: str):
    spec, names = sized(tmp_path, lengths)
    return loa("campaign", "plan", str(spec), "-r", str(names), *extra, cwd=tmp_path, env=ENV)


def test_a_row_over_the_advised_limit_first_does_not_let_one_over_the_hard_limit_pass(tmp_path):
    result = plan_sized(tmp_path, [405, 5005])  # row 3 only advised against, row 4 refused
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert (
        "over what provider 'intl' takes (at most 1.600 characters per message) on 1 row: "
        "row 4 (5.005 characters, 33 parts)"
    ) in line
    assert "row 3" not in line and "advises" not in line


def test_a_row_over_the_hard_limit_first_does_not_make_the_others_refused(tmp_path):
    result = plan_sized(tmp_path, [5005, 805, 905, 1595])
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "on 1 row: row 3 (5.005 characters, 33 parts)" in line
    for row in (4, 5, 6):  # 805, 905 and 1,595 characters: Twilio takes them
        assert f"row {row}" not in line


def test_rows_under_the_hard_limit_are_warned_of_as_over_the_advised_one_only(tmp_path):
    result = plan_sized(tmp_path, [805, 905, 1595])
    assert result.returncode == 0, result.stderr
    assert (
        "over what provider 'intl' advises (at most 320 characters per message) on 3 rows: "
        "row 3 (805 characters, 6 parts), row 4 (905 characters, 6 parts), "
        "row 5 (1.595 characters, 11 parts)"
    ) in result.stderr
    assert "1.600" not in result.stderr
    (warning,) = json.loads(plan_sized(tmp_path, [805, 905, 1595], "--json").stdout)[
        "limit_warnings"
    ]
    assert (warning["limit"], warning["limit_value"], warning["rows"]) == (
        "advised_characters",
        320,
        [3, 4, 5],
    )


#: An eSMS instance (the campaign's provider) and a Twilio one, `tw`, as its fallback.
ESMS_AND_TWILIO = {
    "LOA_PROVIDERS__ESMSBAD__TYPE": "esms",
    "LOA_PROVIDERS__ESMSBAD__API_KEY": "fake-key",
    "LOA_PROVIDERS__ESMSBAD__SECRET_KEY": "fake-secret",
    "LOA_PROVIDERS__ESMSBAD__BASE_URL": "http://127.0.0.1:9",
    **{k.replace("__INTL__", "__TW__"): v for k, v in ENV.items() if "__INTL__" in k},
}


def with_fallback(tmp_path: Path, lengths: list[int]) -> tuple[Path, Path]:
    """A campaign sent by `esmsbad` with `tw` as its fallback, texting ``Chao {name}``
    filled in to these lengths on rows 2, 3 … (Vietnamese numbers)."""
    spec = tmp_path / "campaign.toml"
    spec.write_text(
        'id = "fallback-limits"\nname = "Chào"\ncategory = "public_service"\n'
        'brandname = "NinhThuan"\nprovider = "esmsbad"\n'
        '[messages]\nvi = "Chao {name}"\n[routing]\nfallback = ["tw"]\n',
        encoding="utf-8",
    )
    numbers = ["0912345678", "0987654321", "0903123456"]
    names = ["b" * (length - len("Chao ")) for length in lengths]
    rows = [f"{number},{name}" for number, name in zip(numbers, names, strict=False)]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(["Số điện thoại,name", *rows]) + "\n", encoding="utf-8")
    return spec, path


def test_a_text_longer_than_a_fallback_takes_stops_the_plan_and_the_launch(tmp_path):
    spec, names = with_fallback(tmp_path, [1705, 40, 3005])
    env = ESMS_AND_TWILIO
    result = loa("campaign", "plan", str(spec), "-r", str(names), cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert (
        "messages.vi filled in is over what fallback provider 'tw' (routing.fallback) takes "
        "(at most 1.600 characters per message) on 2 rows: row 2 (1.705 characters, 12 parts), "
        "row 4 (3.005 characters, 20 parts)"
    ) in line
    assert "take that provider out of routing.fallback" in line and "row 3" not in line
    launched = loa("campaign", "launch", str(spec), "-r", str(names), cwd=tmp_path, env=env)
    assert launched.returncode == 2 and "fallback provider 'tw'" in launched.stderr
    status = loa("campaign", "status", "fallback-limits", cwd=tmp_path, env=env)
    assert status.returncode != 0 and "no campaign 'fallback-limits'" in status.stderr


def test_a_fallback_that_cannot_reach_the_numbers_does_not_hold_their_texts(tmp_path):
    spec, names = with_fallback(tmp_path, [1705, 40, 3005])
    env = {**ESMS_AND_TWILIO, "LOA_PROVIDERS__TW__COUNTRIES": '["KR"]'}  # a halt keeps them
    result = loa("campaign", "plan", str(spec), "-r", str(names), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["planned"] == 3 and summary["limit_warnings"] == []


def test_a_fixed_text_past_what_a_fallback_advises_is_a_warning_naming_it():
    spec = CampaignSpec.model_validate(
        {
            "id": "x",
            "name": "x",
            "category": "public_service",
            "brandname": "NinhThuan",
            "provider": "gateway",
            "messages": {"vi": "Please install Bluezone. " * 17},  # 424 characters
            "routing": {"fallback": ["intl"]},
        }
    )
    limits = {"gateway": Limits(max_sender=11), "intl": Limits(1600, advised_characters=320)}
    planner = Planner(spec, limits=limits)
    rows = [ListRow(2, "0912345678", ()), ListRow(3, "0987654321", ())]
    assert len(list(planner.plan(rows))) == 2
    (warning,) = planner.summary.limit_warnings
    assert warning.describe() == (
        "messages.vi is 424 characters (3 parts) for 2 recipients whose fallback is provider "
        "'intl' (routing.fallback), which advises at most 320 characters per message"
    )
    assert warning.as_dict()["fallback"] is True


def test_a_text_of_exactly_twilios_limit_is_taken_and_one_more_character_is_not(tmp_path):
    """Twilio's own words: a body "can be up to 1,600 characters". Row 3 is exactly that
    (planned, only advised against), row 4 one more (refused); both are 11 parts, so only
    the count of characters tells them apart."""
    result = plan_sized(tmp_path, [1600, 1601])
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert (
        "over what provider 'intl' takes (at most 1.600 characters per message) on 1 row: "
        "row 4 (1.601 characters, 11 parts)"
    ) in line
    assert "row 3" not in line

    planned = plan_sized(tmp_path, [1600], "--json")
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)
    assert summary["planned"] == 2  # the Vietnamese row and the 1,600 characters
    (warning,) = summary["limit_warnings"]
    assert (warning["limit"], warning["rows"]) == ("advised_characters", [3])
