"""``send_batch`` against a real ledger, called directly (no broker needed on these paths)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr

from campaigns.plan import Planner
from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from campaigns.status import Status
from ledger.intake import record_campaign
from ledger.schema import campaigns, now
from ledger.summary import status_counts
from tests.helpers import chunked
from worker.dispatch import send_batch
from worker.runtime import Runtime
from worker.settings import Settings

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml")


def runtime_with_campaign(engine, tmp_path) -> Runtime:
    settings = Settings(
        database_url=SecretStr(str(engine.url.render_as_string(hide_password=False))),
        var_dir=tmp_path,
    )
    runtime = Runtime(settings, engine=engine)
    planner = Planner(SPEC)
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(20)]
    record_campaign(
        engine,
        SPEC,
        "list.csv",
        [],
        lambda: planner.summary,
        chunked(planner.plan(rows)),
        batch_size=20,
    )
    return runtime


def test_messages_past_their_validity_expire_instead_of_going_out(engine, tmp_path):
    runtime = runtime_with_campaign(engine, tmp_path)
    with engine.begin() as conn:  # the campaign's validity ran out while the job waited
        conn.execute(sa.update(campaigns).values(valid_until=now() - timedelta(minutes=1)))
    send_batch(runtime, SPEC.id, 1)
    counts = status_counts(engine, SPEC.id)
    assert counts[Status.EXPIRED] == 20
    assert counts[Status.SENT] == counts[Status.DELIVERED] == 0


def test_a_campaign_that_is_not_running_sends_nothing(engine, tmp_path):
    runtime = runtime_with_campaign(engine, tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.update(campaigns).values(state="halted"))
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20


class Recording:
    """A provider double that records what it was asked to send (providers are the one
    thing tests may fake)."""

    name = "sandbox"

    def __init__(self):
        self.sent = []

    def send(self, message):
        from providers import SendResult

        self.sent.append(message)
        return SendResult(provider_message_id=f"R{message.message_id}")

    def classify(self, error):  # pragma: no cover - nothing fails here
        raise error


def test_templates_render_at_send_time_from_the_stored_list_cells(engine, tmp_path):
    spec = SPEC.model_copy(
        update={
            "messages": {
                "vi": SPEC.messages["vi"].model_copy(
                    update={"text": "Kính gửi {name} ({district})"}
                )
            }
        }
    )
    columns = ["STT", "Họ và tên", "Huyện/Thành phố"]
    planner = Planner(spec, columns)
    rows = [ListRow(2, "0912345678", ("1", "Đặng Thị Hương", "Ninh Hải"))]
    record_campaign(
        engine,
        spec,
        "list.csv",
        columns,
        lambda: planner.summary,
        chunked(planner.plan(rows)),
        batch_size=20,
    )
    settings = Settings(
        database_url=SecretStr(str(engine.url.render_as_string(hide_password=False))),
        var_dir=tmp_path,
    )
    runtime = Runtime(settings, engine=engine)
    recording = Recording()
    runtime._providers["sandbox"] = recording
    send_batch(runtime, spec.id, 1)
    (sent,) = recording.sent
    assert sent.text == "Kính gửi Đặng Thị Hương (Ninh Hải)"
    assert sent.to == "+84912345678" and sent.sender == "NinhThuan"


def test_a_batch_outside_its_sending_hours_waits_for_them(engine, tmp_path):
    from datetime import datetime, time

    from dramatiq.brokers.stub import StubBroker

    from campaigns.hours import VIETNAM, SendingWindow
    from worker.broker import use_broker

    local = datetime.now(VIETNAM)
    opens = (local.hour + 2) % 24  # a window that opens in a bit under two or three hours
    window = SendingWindow(time(opens), time((opens + 1) % 24))
    spec = SPEC.model_copy(update={"sending_hours": window})
    planner = Planner(spec)
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(5)]
    record_campaign(
        engine,
        spec,
        "list.csv",
        [],
        lambda: planner.summary,
        chunked(planner.plan(rows)),
        batch_size=20,
    )
    settings = Settings(
        database_url=SecretStr(str(engine.url.render_as_string(hide_password=False))),
        var_dir=tmp_path,
    )
    runtime = Runtime(settings, engine=engine)
    broker = use_broker(StubBroker(), settings)
    send_batch(runtime, spec.id, 1)
    assert status_counts(engine, spec.id)[Status.QUEUED] == 5  # nothing claimed, nothing lost
    import dramatiq

    (raw,) = list(broker.queues["sms.sandbox.DQ"].queue)
    delayed = dramatiq.Message.decode(raw)
    wait_s = (delayed.options["eta"] / 1000) - datetime.now().timestamp()
    expected = (window.next_opening(datetime.now(VIETNAM)) - datetime.now(VIETNAM)).total_seconds()
    assert abs(wait_s - expected) < 30 and wait_s > 3600


def test_cancel_ends_what_is_waiting_and_nothing_else(engine, tmp_path):
    from ledger.messages import cancel_campaign, claim_batch

    runtime_with_campaign(engine, tmp_path)
    assert cancel_campaign(engine, SPEC.id) == 20
    counts = status_counts(engine, SPEC.id)
    assert counts[Status.CANCELLED] == 20
    assert claim_batch(engine, SPEC.id, 1) == []  # a late job finds nothing to send
