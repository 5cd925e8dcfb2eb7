"""Parts behind a 16-bit concatenation reference: a provider instance whose limits say each
part of a long message carries a 7-octet header (``Limits.part_header``, an SMPP provider
set to ``udh16``) gets its messages planned, billed and recorded at 152 GSM-7 septets or
66 UCS-2 units a part, not 153 or 67; a message routed elsewhere is counted as before.

Through the production path: a campaign file and a list, planned by ``prepare`` and
launched by ``launch`` on a Runtime whose provider instance ``smsc`` (a sandbox) carries the
limits an SMPP instance would. Expected counts are worked by hand from
../shared/reference/sms-text.md and the 7-octet header (140 - 7 octets = 152 septets, 133
octets = 66 UCS-2 units), never by ``campaigns.text``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.limits import Limits
from campaigns.plan import PlanError, PlannedMessage, Planner
from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from ledger.schema import messages
from worker.campaign.launch import launch
from worker.campaign.planning import ListOptions, prepare
from worker.runtime import Runtime
from worker.settings import Settings

SIXTEEN_BIT = Limits(part_header=7)

PLAIN = "Cai dat Bluezone de phong COVID-19 tai Ninh Thuan. "
VIETNAMESE = "Sở Y tế Ninh Thuận đề nghị người dân cài đặt Bluezone ngay hôm nay. "


def cut(base: str, length: int) -> str:
    """``length`` characters of ``base`` repeated, with no space at either end (a list
    cell is trimmed, which would shorten the text)."""
    text = (base * (length // len(base) + 1))[:length]
    return text[0].replace(" ", "x") + text[1:-1] + text[-1].replace(" ", "x")


#: (text, parts behind the usual 6-octet header, parts behind a 7-octet one).
CASES = [
    # GSM-7: 160 in one part whatever the header; then 153 or 152 a part.
    (cut(PLAIN, 160), 1, 1),
    (cut(PLAIN, 161), 2, 2),
    (cut(PLAIN, 304), 2, 2),  # 2 x 152
    (cut(PLAIN, 305), 2, 3),
    (cut(PLAIN, 306), 2, 3),  # 2 x 153
    (cut(PLAIN, 307), 3, 3),
    # An escape pair: 150 + '€' (2) fills a 152 part exactly, 152 follow: 304 septets.
    (cut(PLAIN, 150) + "€" + cut(PLAIN, 152), 2, 2),
    # 151 + '€' is 153: it fits a 153 part, but moves whole behind a 7-octet header
    # (151 | € + 150 | 1): three parts where 304 septets would fill two.
    (cut(PLAIN, 151) + "€" + cut(PLAIN, 151), 2, 3),
    # UCS-2 (Vietnamese): 70 in one part; then 67 or 66 a part.
    (cut(VIETNAMESE, 70), 1, 1),
    (cut(VIETNAMESE, 71), 2, 2),
    (cut(VIETNAMESE, 132), 2, 2),  # 2 x 66
    (cut(VIETNAMESE, 133), 2, 3),
    (cut(VIETNAMESE, 134), 2, 3),  # 2 x 67
    (cut(VIETNAMESE, 135), 3, 3),
    # A surrogate pair: 64 + '😀' (2) fills a 66 part exactly, 66 follow: 132 units.
    (cut(VIETNAMESE, 64) + "😀" + cut(VIETNAMESE, 66), 2, 2),
    # 65 + '😀' is 67: it fits a 67 part but moves whole behind 7 octets (65 | 😀 + 64 | 1).
    (cut(VIETNAMESE, 65) + "😀" + cut(VIETNAMESE, 65), 2, 3),
]

#: Viettel numbers go to `smsc` (carriers = { viettel = "smsc" }), Vinaphone ones to the
#: campaign's provider, the sandbox with no limits.
VIETTEL = [f"098{1234500 + i}" for i in range(len(CASES))]
VINAPHONE = [f"091{2345600 + i}" for i in range(len(CASES))]


def campaign(tmp_path: Path, text: str = "{name}") -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(
        f'''id = "udh16"
name = "Bluezone"
category = "public_service"
brandname = "NinhThuan"
provider = "sandbox"
[messages]
vi = "{text}"
[routing]
carriers = {{ viettel = "smsc" }}
''',
        encoding="utf-8",
    )
    return path


def recipients(tmp_path: Path) -> Path:
    """Each case's text twice: row 2 + 2i to Viettel (smsc), row 3 + 2i to Vinaphone."""
    lines = ["Số điện thoại,name"]
    for (text, _, _), viettel, vinaphone in zip(CASES, VIETTEL, VINAPHONE, strict=True):
        assert " ".join(text.split()) == text  # the cell is read back as written
        lines += [f"{viettel},{text}", f"{vinaphone},{text}"]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_runtime(tmp_path: Path, url: str, engine: sa.Engine | None = None) -> Runtime:
    settings = Settings(
        database_url=SecretStr(url),
        var_dir=tmp_path,
        providers={"sandbox": {"type": "sandbox"}, "smsc": {"type": "sandbox"}},
    )
    runtime = Runtime(settings, engine=engine)
    runtime.ensure_schema()
    # What an SMPP instance set to join long messages with a 16-bit reference says.
    runtime.provider("smsc").limits = SIXTEEN_BIT
    return runtime


@pytest.fixture
def runtime(tmp_path, sqlite_url):
    runtime = make_runtime(tmp_path, sqlite_url)
    yield runtime
    runtime.close()


def planned(runtime: Runtime, spec: Path, names: Path) -> tuple[dict[int, PlannedMessage], object]:
    prepared = prepare(runtime, spec, names, ListOptions())
    decisions = list(prepared.decisions())
    assert all(isinstance(d, PlannedMessage) for d in decisions)
    return {d.row: d for d in decisions}, prepared.summary


def test_parts_are_counted_behind_the_header_of_the_provider_each_message_goes_to(
    tmp_path, runtime
):
    by_row, summary = planned(runtime, campaign(tmp_path), recipients(tmp_path))
    for i, (text, usual, sixteen) in enumerate(CASES):
        smsc, sandbox = by_row[2 + 2 * i], by_row[3 + 2 * i]
        assert (smsc.provider, sandbox.provider) == ("smsc", "sandbox")
        assert smsc.parts == sixteen, (len(text), smsc.encoding)
        assert sandbox.parts == usual, (len(text), sandbox.encoding)
    totals = summary.per_provider()
    assert totals["smsc"]["parts"] == sum(c[2] for c in CASES) == 38
    assert totals["sandbox"]["parts"] == sum(c[1] for c in CASES) == 32
    assert summary.parts == 70  # what the plan bills


@pytest.mark.parametrize(
    ("text", "usual", "sixteen"),
    [CASES[7], CASES[15], CASES[5]],
    ids=["escape-pair", "surrogate-pair", "gsm-306"],
)
def test_a_fixed_text_is_counted_behind_its_providers_header(
    tmp_path, runtime, text, usual, sixteen
):
    """A text without fields is counted once per header, not per row."""
    names = tmp_path / "list.csv"
    names.write_text(f"Số điện thoại\n{VIETTEL[0]}\n{VINAPHONE[0]}\n{VIETTEL[1]}\n")
    by_row, summary = planned(runtime, campaign(tmp_path, text), names)
    assert [by_row[r].parts for r in (2, 3, 4)] == [sixteen, usual, sixteen]
    assert summary.per_provider()["smsc"] == {"recipients": 2, "parts": 2 * sixteen}


@pytest.mark.parametrize("parallel", [False, True], ids=["here", "planner-process"])
def test_the_ledger_records_the_parts_the_provider_sends(tmp_path, engine, parallel):
    from worker.queues.broker import use_broker

    url = engine.url.render_as_string(hide_password=False)
    runtime = make_runtime(tmp_path, url, engine)
    use_broker(StubBroker(), runtime.settings)
    try:
        launched = launch(runtime, campaign(tmp_path), recipients(tmp_path), parallel=parallel)
        with engine.connect() as conn:
            recorded = dict(conn.execute(sa.select(messages.c.list_row, messages.c.parts)).all())
    finally:
        runtime.close()
    expected = {}
    for i, (_, usual, sixteen) in enumerate(CASES):
        expected[2 + 2 * i], expected[3 + 2 * i] = sixteen, usual
    assert recorded == expected
    assert launched.prepared.summary.parts == sum(expected.values())


def plain_spec(text: str, fallback: list[str] | None = None) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "id": "x",
            "name": "x",
            "category": "public_service",
            "brandname": "NinhThuan",
            "provider": "gateway",
            "messages": {"vi": text},
            "routing": {"fallback": fallback or []},
        }
    )


ROWS = [ListRow(2, "0912345678", ()), ListRow(3, "0987654321", ())]


def test_nothing_changes_with_default_limits():
    """Limits that say nothing of the header plan exactly what no limits do."""
    texts = [text for text, _, _ in CASES]
    for text in texts:
        spec = plain_spec(text)
        bare = Planner(spec)
        told = Planner(spec, limits={"gateway": Limits(), "other": Limits(max_sender=11)})
        assert list(told.plan(ROWS)) == list(bare.plan(ROWS))
        assert told.summary.as_dict() == bare.summary.as_dict()
    assert [Planner(plain_spec(t)).plan(ROWS[:1]).__next__().parts for t in texts] == [
        usual for _, usual, _ in CASES
    ]


def test_a_fallback_is_held_against_the_parts_the_text_makes_behind_its_header():
    """305 septets are 2 parts through the route's provider and 3 through a fallback that
    joins with a 16-bit reference and takes at most 2: the plan stops, naming it."""
    spec = plain_spec(cut(PLAIN, 305), fallback=["smsc"])
    planner = Planner(spec, limits={"smsc": Limits(max_parts=2, part_header=7)})
    with pytest.raises(PlanError) as refused:
        list(planner.plan(ROWS))
    assert (
        "messages.vi is 305 characters (3 parts) for 2 recipients whose fallback is provider "
        "'smsc' (routing.fallback), which takes at most 2 parts per message"
    ) in str(refused.value)
    assert planner.summary.parts == 2 * 2  # planned through `gateway`, usual header


def test_a_route_with_a_bigger_header_does_not_make_a_fallback_refuse_its_own_count():
    """The reverse: 3 parts planned behind 7 octets, 2 behind the fallback's 6: taken."""
    spec = plain_spec(cut(PLAIN, 305), fallback=["backup"])
    limits = {"gateway": SIXTEEN_BIT, "backup": Limits(max_parts=2)}
    planner = Planner(spec, limits=limits)
    assert [m.parts for m in planner.plan(ROWS)] == [3, 3]
    assert planner.summary.excess == {}
