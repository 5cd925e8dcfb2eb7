"""A GSM-7 text holding characters a provider instance cannot carry in the coding it sends
GSM texts in (``Limits.uncarried``: an SMSC reading them as Latin-1 has no Greek capitals
and no ``€``; as IA5/ASCII, nothing beyond ASCII) stops the plan, naming the instance, the
characters as they appear (in order, each once) and, for a template, the first rows; a
UCS-2 text (Vietnamese) is always carried. Through the production path: a campaign file
and a list, planned by ``prepare`` and launched by ``launch``, the provider instance
``smsc`` (a sandbox) carrying the limits an SMPP instance would."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.limits import ROWS_SHOWN, Limits
from campaigns.plan import PlanError, PlannedMessage
from ledger.schema import campaigns, messages
from worker.campaign.launch import launch
from worker.campaign.planning import ListOptions, prepare
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.settings import Settings

#: GSM 03.38 characters Latin-1 lacks (written out here, not derived from a codec).
LATIN1 = Limits(uncarried=frozenset("ΔΦΓΛΩΠΨΣΘΞ€"))
#: GSM 03.38 characters ASCII lacks.
IA5 = Limits(uncarried=frozenset("£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€"))


@pytest.fixture
def runtime(tmp_path, sqlite_url):
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        var_dir=tmp_path,
        providers={"sandbox": {"type": "sandbox"}, "smsc": {"type": "sandbox"}},
    )
    runtime = Runtime(settings)
    runtime.ensure_schema()
    use_broker(StubBroker(), settings)
    yield runtime
    runtime.close()


def campaign(tmp_path: Path, vi: str, provider: str = "smsc", fallback: str = "") -> Path:
    path = tmp_path / "campaign.toml"
    routing = f'[routing]\nfallback = ["{fallback}"]\n' if fallback else ""
    path.write_text(
        f'id = "carried"\nname = "Bluezone"\ncategory = "public_service"\n'
        f'brandname = "NinhThuan"\nprovider = "{provider}"\n[messages]\nvi = "{vi}"\n{routing}',
        encoding="utf-8",
    )
    return path


def recipients(tmp_path: Path, names: list[str]) -> Path:
    """Rows 2, 3 …: a Vietnamese number each, and its name."""
    lines = ["Số điện thoại,name"]
    lines += [f"091{2345600 + i},{name}" for i, name in enumerate(names)]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plan(runtime: Runtime, spec: Path, names: Path) -> list[PlannedMessage]:
    prepared = prepare(runtime, spec, names, ListOptions())
    return list(prepared.decisions())  # type: ignore[arg-type]


def test_a_fixed_text_with_characters_latin1_lacks_is_refused_naming_them_in_order(
    tmp_path, runtime
):
    runtime.provider("smsc").limits = LATIN1
    spec = campaign(tmp_path, "Phi 5€ cho ΣΔ, tra 5€ [truoc] ngay Σ")
    with pytest.raises(PlanError) as refused:
        plan(runtime, spec, recipients(tmp_path, ["An", "Binh"]))
    assert str(refused.value) == (
        "messages.vi holds '€', 'Σ', 'Δ' for 2 recipients routed to provider 'smsc', which "
        "cannot carry them in the coding it sends GSM texts in. Every send of such a text "
        "would fail: write those characters otherwise, or route these numbers to another "
        "provider"
    )


def test_a_template_is_refused_on_the_rows_whose_filled_text_holds_them(tmp_path, runtime):
    runtime.provider("smsc").limits = IA5
    names = ["An", "Zoë", "Binh", "Müller", "Sørensen", "Åse", "Émile", "Ñuñoa", "Chi"]
    spec = campaign(tmp_path, "Kinh gui {name}: cai Bluezone")
    with pytest.raises(PlanError) as refused:
        plan(runtime, spec, recipients(tmp_path, names))
    said = str(refused.value)
    # 'ë' is not GSM 03.38: Zoë's text is UCS-2, which the SMSC carries.
    assert said.startswith(
        "messages.vi filled in holds characters provider 'smsc' cannot carry in the coding "
        "it sends GSM texts in ('ü', 'ø', 'Å', 'É', 'Ñ', 'ñ') on 5 rows: row 5 ('ü'), "
        "row 6 ('ø'), row 7 ('Å'), row 8 ('É'), row 9 ('Ñ', 'ñ')."
    ), said
    assert len(names) - 4 == ROWS_SHOWN  # every row holding one is shown: no "… more"
    for clean in (2, 3, 4, 10):
        assert f"row {clean} " not in said


def test_rows_beyond_those_shown_are_counted(tmp_path, runtime):
    runtime.provider("smsc").limits = LATIN1
    names = [f"Nhom{i}Σ" for i in range(8)]
    with pytest.raises(PlanError, match=r"on 8 rows: row 2 \('Σ'\), .* row 6 \('Σ'\) and 3 more"):
        plan(runtime, campaign(tmp_path, "Gui {name}"), recipients(tmp_path, names))


def test_vietnamese_is_ucs2_and_always_carried(tmp_path, runtime):
    runtime.provider("smsc").limits = IA5
    spec = campaign(tmp_path, "Phí 5€ (ΣΔ): Sở Y tế Ninh Thuận đề nghị cài Bluezone, {name}")
    decisions = plan(runtime, spec, recipients(tmp_path, ["Müller", "Ñandú", "Åse"]))
    assert [(d.provider, d.encoding) for d in decisions] == [("smsc", "ucs2")] * 3


def test_a_text_it_carries_is_planned(tmp_path, runtime):
    runtime.provider("smsc").limits = LATIN1
    spec = campaign(tmp_path, "Gui {name}: 5£ [Ninh Thuan] à é Ü ~ | ^")
    decisions = plan(runtime, spec, recipients(tmp_path, ["Müller", "Åse"]))
    assert [(d.encoding, d.parts) for d in decisions] == [("gsm7", 1)] * 2


def test_a_fallback_that_cannot_carry_the_text_stops_the_plan(tmp_path, runtime):
    runtime.provider("smsc").limits = LATIN1
    spec = campaign(tmp_path, "Gia 5€ tai {name}", provider="sandbox", fallback="smsc")
    with pytest.raises(PlanError) as refused:
        plan(runtime, spec, recipients(tmp_path, ["Phan Rang", "Ninh Hai"]))
    said = str(refused.value)
    assert said.startswith(
        "messages.vi filled in holds characters fallback provider 'smsc' (routing.fallback) "
        "cannot carry in the coding it sends GSM texts in ('€') on 2 rows: row 2 ('€'), "
        "row 3 ('€'). Every send of such a text would fail: write that character otherwise, "
        "route these numbers to another provider, or take that provider out of "
        "routing.fallback"
    ), said


def test_a_text_over_a_limit_and_uncarried_is_refused_for_both(tmp_path, runtime):
    runtime.provider("smsc").limits = Limits(max_parts=1, uncarried=LATIN1.uncarried)
    spec = campaign(tmp_path, "Σ" + "a" * 200)
    with pytest.raises(PlanError) as refused:
        plan(runtime, spec, recipients(tmp_path, ["An"]))
    assert (
        "which takes at most 1 parts per message. Every send of such a text would be "
        "refused: shorten it, or route these numbers to another provider. messages.vi holds "
        "'Σ' for 1 recipient routed to provider 'smsc', which cannot carry it"
    ) in str(refused.value)


def test_launch_refuses_it_too_and_records_nothing(tmp_path, runtime):
    runtime.provider("smsc").limits = LATIN1
    spec, names = campaign(tmp_path, "Gia 5€ tai {name}"), recipients(tmp_path, ["An"])
    with pytest.raises(PlanError, match=r"provider 'smsc' cannot carry .*\('€'\)"):
        launch(runtime, spec, names, parallel=True)
    with runtime.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 0
        assert conn.scalar(sa.select(sa.func.count()).select_from(messages)) == 0


def test_limits_take_only_gsm_characters_and_a_header_a_part_can_carry():
    with pytest.raises(ValueError, match=r"uncarried: not GSM 03.38 characters: \['đ'\]"):
        Limits(uncarried=frozenset("đ€"))
    with pytest.raises(ValueError, match="part_header"):
        Limits(part_header=5)
    assert Limits(part_header=7).part_header == 7 and not Limits(part_header=7).on_text
    assert Limits(uncarried=frozenset("€")).on_text
