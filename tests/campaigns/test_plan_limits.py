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
