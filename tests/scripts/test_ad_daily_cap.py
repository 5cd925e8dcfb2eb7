"""``LOA_AD_DAILY_CAP`` as the README promises it, through ``loa campaign plan``: at most
that many advertising SMS per number per 24 h, across campaigns (default 3); a number
that already has them is suppressed as ``frequency_cap``, and public-service campaigns
are never capped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from ledger.db import make_engine
from ledger.migrate import upgrade
from tests.helpers import record
from tests.scripts.test_cli import EXAMPLE, ROOT, loa

AD_SALE = ROOT / "examples" / "ad-sale.toml"
COLUMNS = ["Họ và tên", "Số điện thoại", "Huyện/Thành phố"]
#: Advertising SMS each number was already sent today, each by a campaign of its own.
EARLIER = {"0912345678": 3, "0987654321": 2, "0903123456": 0}


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A ledger where three earlier advertising campaigns, launched within the last
    hour, went to the numbers of ``EARLIER`` as often as it says."""
    url = f"sqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    engine = make_engine(url)
    upgrade(engine)
    ad = load_spec(AD_SALE)
    for n in range(1, 4):
        rows = [
            ListRow(2 + i, phone, ("Khách", phone, "Ninh Hải"))
            for i, (phone, times) in enumerate(EARLIER.items())
            if times >= n
        ]
        record(engine, ad.model_copy(update={"id": f"ad-earlier-{n}"}), rows, COLUMNS)
    engine.dispose()
    return url


def plan(spec: Path, tmp_path: Path, env: dict[str, str]) -> dict:
    recipients = tmp_path / "today.csv"
    recipients.write_text(
        ",".join(COLUMNS) + "\n" + "".join(f"An,{phone},Bác Ái\n" for phone in EARLIER),
        encoding="utf-8",
    )
    result = loa(
        "campaign", "plan", str(spec), "-r", str(recipients), "--json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("cap", "capped"),
    [
        (None, 1),  # the default, 3: only the number with three already
        ("2", 2),  # and the one with two
        ("4", 0),  # nobody has four
        ("1", 2),  # the one with none is never capped
    ],
)
def test_an_advertising_plan_suppresses_numbers_at_the_daily_cap(cap, capped, ledger, tmp_path):
    env = {"LOA_DATABASE_URL": ledger}
    if cap is not None:
        env["LOA_AD_DAILY_CAP"] = cap
    found = plan(AD_SALE, tmp_path, env)
    assert found["suppressed_by_list"] == ({"frequency_cap": capped} if capped else {})
    assert found["planned"] == len(EARLIER) - capped


def test_a_public_service_plan_is_never_capped(ledger, tmp_path):
    found = plan(EXAMPLE, tmp_path, {"LOA_DATABASE_URL": ledger, "LOA_AD_DAILY_CAP": "1"})
    assert found["suppressed_by_list"] == {}
    assert found["planned"] == len(EARLIER)
