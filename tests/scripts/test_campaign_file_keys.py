"""Campaign-file keys whose README promise had no test of its own, each through the path
production takes (the file as an operator writes it, then ``loa`` or the send path):

- ``name``: free text for people, shown as written;
- ``suppress``: the lists checked at planning, ``opt_out`` by default, which advertising
  cannot narrow to leave out ``dnc``;
- ``[columns]``: a template field taken from a header no common Vietnamese name covers;
- ``opt_out_instruction``, ``add_ad_markers``: advertising texts get ``[QC]`` first and
  the instruction last when asked, and are checked for both otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from campaigns.recipients import ListRow
from campaigns.spec import SpecError, load_spec
from campaigns.status import Status
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.summary import status_counts
from tests.helpers import record
from tests.scripts.test_cli import EXAMPLE, ROOT, loa
from tests.worker.test_dispatch import Recording, runtime_for
from worker.sending.dispatch import send_batch

AD_SALE = ROOT / "examples" / "ad-sale.toml"


def edited(source: Path, tmp_path: Path, old: str, new: str) -> Path:
    """A copy of an example campaign file with one change, as an operator would make it."""
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"edited-{source.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_a_campaigns_name_is_free_text_shown_as_written(tmp_path, ledger):
    name = 'Thông báo "khẩn" — Sở TT&TT: 50% dân cư, <tháng 8/2020>'
    spec = load_spec(
        edited(
            EXAMPLE,
            tmp_path,
            'name = "Cài đặt ứng dụng Bluezone — Ninh Thuận"',
            f"name = {json.dumps(name, ensure_ascii=False)}",
        )
    )
    engine = make_engine(ledger)
    record(engine, spec, [ListRow(2, "0912345678", ())])
    engine.dispose()
    listed = loa("campaign", "list", "--json", cwd=tmp_path, env={"LOA_DATABASE_URL": ledger})
    assert listed.returncode == 0, listed.stderr
    assert [c["name"] for c in json.loads(listed.stdout)["campaigns"]] == [name]
    status = loa(
        "campaign", "status", spec.id, "--json", cwd=tmp_path, env={"LOA_DATABASE_URL": ledger}
    )
    assert json.loads(status.stdout)["name"] == name


def plan(spec: Path, tmp_path: Path, ledger: str) -> dict:
    recipients = tmp_path / "list.csv"
    recipients.write_text(
        "Họ và tên,Số điện thoại,Huyện/Thành phố\n"
        "An,0912345678,Ninh Hải\nBình,0987654321,Bác Ái\nChi,0903123456,Ninh Phước\n",
        encoding="utf-8",
    )
    result = loa(
        "campaign",
        "plan",
        str(spec),
        "-r",
        str(recipients),
        "--json",
        cwd=tmp_path,
        env={"LOA_DATABASE_URL": ledger},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["suppressed_by_list"]


def test_suppress_names_the_lists_checked_at_planning(tmp_path, ledger):
    env = {"LOA_DATABASE_URL": ledger}
    for number, listed in (("0912345678", "dnc"), ("0987654321", "opt_out")):
        added = loa("suppress", "add", number, "--list", listed, cwd=tmp_path, env=env)
        assert added.returncode == 0, added.stderr
    # Public service: opt_out by default, the Do-Not-Call register only when named.
    assert plan(EXAMPLE, tmp_path, ledger) == {"opt_out": 1}
    both = edited(
        EXAMPLE, tmp_path, 'validity = "12h"', 'validity = "12h"\nsuppress = ["opt_out", "dnc"]'
    )
    assert plan(both, tmp_path, ledger) == {"dnc": 1, "opt_out": 1}
    # Advertising checks both by default.
    assert plan(AD_SALE, tmp_path, ledger) == {"dnc": 1, "opt_out": 1}


def test_advertising_cannot_leave_out_the_do_not_call_list(tmp_path, ledger):
    narrowed = edited(
        AD_SALE, tmp_path, 'validity = "10h"', 'validity = "10h"\nsuppress = ["opt_out"]'
    )
    for command in ("plan", "launch"):
        result = loa(
            "campaign", command, str(narrowed), "-r", str(tmp_path / "none.csv"),
            cwd=tmp_path, env={"LOA_DATABASE_URL": ledger},
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "suppress: advertising must check the Do-Not-Call list ('dnc')" in result.stderr


def test_columns_takes_a_template_field_from_the_header_it_names(tmp_path, ledger):
    """A header no alias knows ("Người nhận tin"): without ``[columns]`` the plan stops
    naming the field; with it, the text sent carries that column's cell."""
    text = 'vi = "Sở TT&TT Ninh Thuận: Để phòng'
    templated = 'vi = "Kính gửi {name}: Để phòng'
    unmapped = edited(EXAMPLE, tmp_path, text, templated)
    header = ["STT", "Người nhận tin"]
    recipients = tmp_path / "list.csv"
    recipients.write_text(
        "STT,Người nhận tin,Số điện thoại\n1,Đặng Thị Hương,0912345678\n", encoding="utf-8"
    )
    refused = loa(
        "campaign",
        "plan",
        str(unmapped),
        "-r",
        str(recipients),
        cwd=tmp_path,
        env={"LOA_DATABASE_URL": ledger},
    )
    assert refused.returncode == 2 and "{name}" in refused.stderr

    mapped = tmp_path / "mapped.toml"
    mapped.write_text(
        unmapped.read_text(encoding="utf-8").replace(
            "# Per-part prices", '[columns]\nname = "Người nhận tin"\n\n# Per-part prices', 1
        ),
        encoding="utf-8",
    )
    spec = load_spec(mapped)
    engine = make_engine(ledger)
    record(engine, spec, [ListRow(2, "0912345678", ("1", "Đặng Thị Hương"))], header)
    carrier = Recording()
    runtime = runtime_for(engine, tmp_path, carrier)
    try:
        send_batch(runtime, spec.id, 1)
        assert status_counts(engine, spec.id)[Status.SENT] == 1
    finally:
        runtime.close()
    (sent,) = carrier.sent
    assert sent.text.startswith("Kính gửi Đặng Thị Hương: Để phòng")


def test_add_ad_markers_adds_the_label_first_and_the_opt_out_instruction_last(tmp_path):
    """``examples/ad-sale.toml`` writes neither in its texts and sets ``add_ad_markers``."""
    instruction = "Tu choi QC soan TC gui 5656"
    spec = load_spec(AD_SALE)
    assert spec.opt_out_instruction == instruction
    for language in ("vi", "en"):
        text = spec.template(language).render(("An", "Ninh Hải"))
        assert text.startswith("[QC] ") and text.endswith(" " + instruction), text
    # Without it the texts are checked, not completed: these lack both, and are refused.
    unmarked = edited(AD_SALE, tmp_path, "add_ad_markers = true", "add_ad_markers = false")
    with pytest.raises(SpecError, match="advertising text must"):
        load_spec(unmarked)
