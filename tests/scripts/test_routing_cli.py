"""Routing as operators meet it: ``loa campaign plan`` shows where each number goes, a
launch sends through every route, and a bad route stops at plan time."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from tests.scripts.test_cli import EXAMPLE, loa

#: A Vietnamese gateway (it reaches Vietnam only) as the default, a second sandbox for
#: Viettel numbers, and an international one. Nothing here is contacted: plans send
#: nothing, and the launch below routes nothing to the gateway.
PROVIDERS = {
    "LOA_PROVIDERS__GATEWAY__TYPE": "esms",
    "LOA_PROVIDERS__GATEWAY__API_KEY": "fake-key",
    "LOA_PROVIDERS__GATEWAY__SECRET_KEY": "fake-secret",
    "LOA_PROVIDERS__GATEWAY__BASE_URL": "http://127.0.0.1:9",
    "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
    "LOA_PROVIDERS__INTL__TYPE": "sandbox",
}
NUMBERS = ["0961234567", "0912345678", "+82 10 1234 5678", "+49 1512 3456789"]


def campaign(tmp_path: Path, routing: str, provider: str = "gateway") -> Path:
    text = EXAMPLE.read_text(encoding="utf-8").replace('"sandbox"', f'"{provider}"')
    path = tmp_path / "routed.toml"
    path.write_text(text.replace("[prices]", f"[routing]\n{routing}\n\n[prices]"), "utf-8")
    return path


def recipients(tmp_path: Path) -> Path:
    path = tmp_path / "list.csv"
    rows = "".join(f"Người {i},{number}\n" for i, number in enumerate(NUMBERS))
    path.write_text("Họ tên,Số điện thoại\n" + rows, encoding="utf-8")
    return path


def plan(tmp_path: Path, routing: str, provider: str = "gateway") -> dict:
    result = loa(
        "campaign", "plan", str(campaign(tmp_path, routing, provider)),
        "--recipients", str(recipients(tmp_path)), "--json",
        cwd=tmp_path, env=PROVIDERS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_plan_shows_the_routing_result_per_provider(tmp_path):
    routed = plan(tmp_path, 'carriers = { viettel = "sandbox" }\ncountries = { other = "intl" }')
    assert routed["providers"] == {
        "gateway": {"recipients": 1, "parts": 3},
        "intl": {"recipients": 2, "parts": 6},
        "sandbox": {"recipients": 1, "parts": 3},
    }
    assert [rule["rule"] for rule in routed["routing"]] == ["carrier", "other_countries", "default"]


def test_numbers_no_route_can_reach_are_rejected_in_the_plan(tmp_path):
    # Only the Vietnamese gateway: the Korean and German numbers have nowhere to go.
    gap = plan(tmp_path, 'carriers = { viettel = "sandbox" }')
    assert gap["rejected_by_reason"] == {"no_route": 2}
    assert gap["planned"] == 2


def test_the_human_plan_has_a_routing_table(tmp_path):
    result = loa(
        "campaign", "plan", str(campaign(tmp_path, 'countries = { other = "intl" }')),
        "--recipients", str(recipients(tmp_path)),
        cwd=tmp_path, env={**PROVIDERS, "COLUMNS": "160"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Định tuyến · routing" in result.stdout
    assert "nước khác · other countries" in result.stdout


def test_a_route_to_an_unknown_provider_is_rejected_at_plan_time(tmp_path):
    for command in ("plan", "launch"):
        result = loa(
            "campaign", command, str(campaign(tmp_path, 'fallback = ["nowhere"]')),
            "--recipients", str(recipients(tmp_path)),
            cwd=tmp_path, env=PROVIDERS,
        )  # fmt: skip
        assert result.returncode == 2
        assert "routing.fallback[0]: unknown provider 'nowhere'" in result.stderr
    ledger = tmp_path / "var" / "loa.db"
    if ledger.exists():
        with sa.create_engine(f"sqlite:///{ledger}").connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM campaigns").scalar() == 0


def test_a_launch_sends_every_share_through_its_route(tmp_path):
    routing = 'countries = { other = "intl" }'
    launched = loa(
        "campaign", "launch", str(campaign(tmp_path, routing, provider="sandbox")),
        "--recipients", str(recipients(tmp_path)), "--json",
        cwd=tmp_path, env=PROVIDERS,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    status = loa(
        "campaign", "status", json.loads(launched.stdout)["campaign"], "--json",
        cwd=tmp_path, env=PROVIDERS,
    )  # fmt: skip
    by_provider = json.loads(status.stdout)["by_provider"]
    assert sum(by_provider["sandbox"].values()) == 2
    assert sum(by_provider["intl"].values()) == 2
    assert json.loads(status.stdout)["final"] == 4


def test_an_instance_cannot_claim_countries_its_type_cannot_reach(tmp_path):
    env = {**PROVIDERS, "LOA_PROVIDERS__GATEWAY__COUNTRIES": '["VN", "KR"]'}
    result = loa("campaign", "status", "anything", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "LOA_PROVIDERS__GATEWAY__COUNTRIES" in result.stderr
    assert "reaches only VN, not KR" in result.stderr
