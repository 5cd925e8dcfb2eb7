"""A provider's limits hold where the plan cannot see: a message handed over to a fallback
whose text limit it exceeds fails before it is sent, and `loa provider test --sender`
refuses a sender no campaign could use. Against the local fakes of eSMS and Twilio
(``providers.fakes``), which record every request they get."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.halts import all_halts
from ledger.schema import messages
from ledger.summary import status_counts
from tests.fake_gateway import fake_gateway
from tests.helpers import record
from tests.scripts.test_cli import loa

ACCOUNT = "AC" + "0" * 32
TOKEN = "fake-twilio-token-7f3a9c"


@pytest.fixture(scope="module")
def twilio():
    with fake_gateway("providers.fakes.twilio") as running:
        yield running


@pytest.fixture
def esms():
    with fake_gateway("providers.fakes.esms") as running:
        yield running


def test_a_message_handed_to_a_fallback_it_is_too_long_for_fails_unsent(
    tmp_path, sqlite_url, esms, twilio
):
    """A campaign recorded without the plan's check of its fallbacks' limits (launched
    before it existed): when eSMS halts, its messages move to Twilio; the two Twilio
    refuses (over 1,600 characters) fail there without a request, the other is sent."""
    from worker.queues.broker import use_broker
    from worker.runtime import Runtime
    from worker.sending.dispatch import OVER_LIMIT, send_batch
    from worker.settings import Settings

    twilio.reset()
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        var_dir=tmp_path,
        send_concurrency=1,  # one request at a time: the halt comes with the first
        providers={
            "esmsbad": {
                "type": "esms",
                "api_key": "fake-key",
                "secret_key": "fake-secret",
                "base_url": esms.url,
            },
            "tw": {
                "type": "twilio",
                "account_sid": ACCOUNT,
                "auth_token": TOKEN,
                "base_url": twilio.url,
            },
        },
    )
    runtime = Runtime(settings)
    runtime.ensure_schema()
    broker = use_broker(StubBroker(), settings)
    broker.declare_queue("sms.tw")
    spec = CampaignSpec.model_validate(
        {
            "id": "handed-over",
            "name": "Chào",
            "category": "public_service",
            "brandname": "NinhThuan",
            "provider": "esmsbad",
            "messages": {"vi": "Chao {name}"},
            "routing": {"fallback": ["tw"]},
        }
    )
    names = ["b" * 1700, "Lan", "b" * 3000]  # 1,705, 8 and 3,005 characters
    numbers = ["0912345678", "0987654321", "0903123456"]
    rows = [
        ListRow(i + 2, n, (name,)) for i, (n, name) in enumerate(zip(numbers, names, strict=True))
    ]
    record(runtime.engine, spec, rows, ["name"])
    try:
        esms.faults({"code": "101", "requests": 1})  # credentials refused: eSMS halts
        send_batch(runtime, spec.id, 1, "esmsbad")
        assert list(all_halts(runtime.engine)) == ["esmsbad"]
        send_batch(runtime, spec.id, 1, "tw")  # what the handed-over job does

        ((_, to, _, answer),) = twilio.received()  # one request: the short text
        assert (to, answer) == ("+84987654321", "queued")
        counts = status_counts(runtime.engine, spec.id)
        assert (counts[Status.SENT], counts[Status.FAILED]) == (1, 2)
        with runtime.engine.connect() as conn:
            failed = conn.execute(
                sa.select(messages.c.list_row, messages.c.provider, messages.c.error_code)
                .where(messages.c.status == Status.FAILED.value)
                .order_by(messages.c.list_row)
            ).all()
        assert [tuple(row) for row in failed] == [(2, "tw", OVER_LIMIT), (4, "tw", OVER_LIMIT)]
    finally:
        runtime.close()


def twilio_env(url: str) -> dict[str, str]:
    return {
        "LOA_PROVIDERS__INTL__TYPE": "twilio",
        "LOA_PROVIDERS__INTL__ACCOUNT_SID": ACCOUNT,
        "LOA_PROVIDERS__INTL__AUTH_TOKEN": TOKEN,
        "LOA_PROVIDERS__INTL__BASE_URL": url,
        "LOA_PROVIDERS__SANDBOX__TYPE": "sandbox",
    }


@pytest.mark.parametrize(
    ("provider", "sender", "said"),
    [
        ("intl", "<script>", "--sender '<script>': at most 11 characters, only letters"),
        (
            "intl",
            "NinhThuanTourism",
            "--sender 'NinhThuanTourism' is 16 characters: provider 'intl' takes a sender of "
            "at most 11",
        ),
        ("intl", "0912345678", "--sender '0912345678': a brandname cannot be digits only"),
        # A line break after it passed the campaign file's rule too (``$`` before a "\n").
        ("intl", "NinhThuan\n", "--sender 'NinhThuan\\n': at most 11 characters"),
        # The sandbox has no sender limit of its own: the campaign file's rules still hold.
        ("sandbox", "NinhThuanTourism", "--sender 'NinhThuanTourism': at most 11 characters"),
    ],
)
def test_test_refuses_a_sender_no_campaign_could_use(tmp_path, twilio, provider, sender, said):
    twilio.reset()
    result = loa(
        "provider", "test", provider, "--to", "0912345678", "--sender", sender,
        cwd=tmp_path, env=twilio_env(twilio.url),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert said in line
    assert twilio.received() == []  # nothing sent


def test_test_sends_with_a_sender_a_campaign_could_use(tmp_path, twilio):
    twilio.reset()
    result = loa(
        "provider", "test", "intl", "--to", "0912345678", "--sender", "Ninh Thuan",
        "--json", cwd=tmp_path, env=twilio_env(twilio.url),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ((_, to, _, answer),) = twilio.received()
    assert (to, answer) == ("+84912345678", "queued")
