"""Tables never cut a value: through the real commands, piped (no terminal, no COLUMNS:
as wide as their content) and on an 80- or 60-column terminal (COLUMNS), where the less
important columns are left out, and a line says which, rather than a value ending in
"…" or a column falling off the edge."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.scripts.test_campaign_list_cli import _campaign, _set
from tests.scripts.test_cli import EXAMPLE, loa

ROOT = Path(__file__).resolve().parents[2]
RESIDENTS = ROOT / "examples" / "ninh-thuan-residents.csv"
LONG_ID = "bluezone-ninh-thuan-2020-dot-2-nhac-lai-cai-dat"
LEFT_OUT = "narrow window, columns left out"


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def no_cut(text: str) -> None:
    """Nothing ends in rich's "…" (a value cut to fit its column)."""
    assert "…" not in text, text


@pytest.fixture
def ledger(engine, ledger_url):
    """A campaign with a long id, nothing delivered yet (a share of 0,0 %), and one with
    two thirds delivered."""
    _campaign(engine, LONG_ID, datetime(2026, 1, 10, 3, 0, tzinfo=UTC), 3)
    _campaign(engine, "ngan", datetime(2026, 1, 11, 3, 0, tzinfo=UTC), 3)
    _set(engine, "ngan", "delivered", 2)
    return {"LOA_DATABASE_URL": ledger_url}


def test_campaign_list_piped_is_as_wide_as_its_content(tmp_path, ledger):
    piped = loa("campaign", "list", cwd=tmp_path, env=ledger)
    assert piped.returncode == 0, piped.stderr
    text = piped.stdout
    no_cut(text)
    assert LONG_ID in text  # on one line: not folded at 80 columns
    assert widest(text) > 80  # rich's default would have cut it to 80
    assert text.count("0,0 %") == 1 and "66,7 %" in text
    assert LEFT_OUT not in text


@pytest.mark.parametrize("columns", [80, 60])
def test_campaign_list_on_a_narrow_terminal_keeps_every_share(tmp_path, ledger, columns):
    narrow = loa("campaign", "list", cwd=tmp_path, env={**ledger, "COLUMNS": str(columns)})
    assert narrow.returncode == 0, narrow.stderr
    text = narrow.stdout
    assert widest(text) <= columns
    no_cut(text)
    assert "0,0 %" in text and "66,7 %" in text  # the share and its sign, whole
    assert "".join(text.split()).count(LONG_ID) == 1  # folded, not cut
    if columns == 60:  # what had to go is named
        assert "columns left out" in " ".join(text.split())
        assert "Tạo lúc · created" in " ".join(text.split())


PLANNED = "bluezone-ninh-thuan-2020"


def test_plan_keeps_every_carrier_whole(tmp_path):
    args = ("campaign", "plan", str(EXAMPLE), "-r", str(RESIDENTS))
    piped = loa(*args, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    no_cut(piped.stdout)
    assert "vietnamobile" in piped.stdout and "12.036.450 ₫" in piped.stdout
    # The title on one line: the counts table is at least as wide as it.
    assert piped.stdout.splitlines()[0] == f"Kế hoạch {PLANNED} (chưa gửi · dry run)"
    for columns in (80, 50):
        narrow = loa(*args, cwd=tmp_path, env={"COLUMNS": str(columns)})
        assert narrow.returncode == 0, narrow.stderr
        assert widest(narrow.stdout) <= columns
        no_cut(narrow.stdout)
        # Every carrier and the total cost whole, on one line each.
        assert re.search(r"│ vietnamobile +│", narrow.stdout), narrow.stdout
        assert "12.036.450 ₫" in narrow.stdout
    said = " ".join(narrow.stdout.split())  # 50 columns: the encoding and more left out
    assert "columns left out: mã hoá · encoding" in said


def test_provider_list_names_the_whole_variable_to_set(tmp_path):
    env = {"LOA_PROVIDERS__ESMS_HCM__TYPE": "esms", "COLUMNS": "80"}
    listed = loa("provider", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 2  # unusable settings
    no_cut(listed.stdout)
    assert "LOA_PROVIDERS__ESMS_HCM__SECRET_KEY" in listed.stdout
    assert "LOA_PROVIDERS__ESMS_HCM__API_KEY" in listed.stdout
    table = listed.stdout.split("esms_hcm:")[0]
    assert widest(table) <= 80 and "unusable settings" in table


def test_the_watched_provider_table_keeps_its_state_column(tmp_path):
    """What `--watch` redraws on a terminal (a rate column beside the others), rendered
    as the live view does, at 100, 80 and 60 columns: the state column is always there,
    and what a narrow screen leaves out is named."""
    from rich.console import Console

    from ledger.summary import summarise
    from scripts.campaign_status import Reading, render
    from tests.scripts.test_watch_cli import waiting_campaign
    from worker.campaign.waiting import explain
    from worker.runtime import Runtime
    from worker.settings import Settings

    waiting_campaign(tmp_path)  # two messages queued outside the campaign's hours
    settings = Settings(var_dir=tmp_path / "var")
    runtime = Runtime(settings)
    try:
        standing = explain(runtime, summarise(runtime.engine, "bluezone-ninh-thuan-2020"))
    finally:
        runtime.close()
    reading = Reading(standing, 10.0, {"sandbox": 28.0}, 2.0)
    for columns in (100, 80, 60):
        screen = io.StringIO()
        console = Console(file=screen, width=columns, force_terminal=True, color_system=None)
        console.print(render(reading, "Chiến dịch x", compact=True, console=console))
        text = screen.getvalue()
        assert widest(text) <= columns, text
        no_cut(text)
        assert "tình trạng" in text and "ngoài giờ" in text, text  # the last column
        (top,) = [line for line in text.splitlines() if line.startswith("┏")]
        assert top.endswith("┓"), text  # its right edge, not cropped
        said = " ".join(text.split())
        if columns == 100:
            assert "28,0 tin/giây" in text and LEFT_OUT not in said
        if columns == 60:
            assert f"{LEFT_OUT}: tiến độ · progress" in said, text


def test_status_names_handed_apart_from_sent(tmp_path):
    launched = loa("campaign", "launch", str(EXAMPLE), "-r", str(_two(tmp_path)), cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    shown = loa("campaign", "status", "bluezone-ninh-thuan-2020", cwd=tmp_path).stdout
    assert "Chờ báo nhận · sent, awaiting receipt" in shown  # the status: taken, no receipt yet
    providers = shown[shown.index("Theo nhà cung cấp") :]
    header = providers[: providers.index("┡")]  # the provider table's header
    assert "đã chuyển cho" in header and "nhà cung cấp" in header and "handed" in header
    assert "đã gửi" not in providers and "2/2" in providers
    found = json.loads(
        loa("campaign", "status", "bluezone-ninh-thuan-2020", "--json", cwd=tmp_path).stdout
    )
    assert found["final"] == 2


def _two(tmp_path: Path) -> Path:
    path = tmp_path / "two.csv"
    path.write_text("phone\n0912345678\n0987654321\n", encoding="utf-8")
    return path
