"""``worker.campaign.waiting.explain`` says what the worker does: the batch a worker delays for the
sending hours comes back when the status says the campaign stops waiting; a halted
provider and a cooldown read from the same places the worker reads them."""

from __future__ import annotations

from datetime import UTC, datetime, time

import dramatiq
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.hours import VIETNAM, SendingWindow
from campaigns.recipients import ListRow
from campaigns.status import Status
from ledger.halts import halt
from ledger.summary import status_counts, summarise
from tests.helpers import record
from tests.worker.test_dispatch import SPEC
from worker.campaign.waiting import explain
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.sending.cooldown import LocalCooldown
from worker.sending.dispatch import send_batch
from worker.settings import Settings


def runtime_for(engine, tmp_path, spec) -> Runtime:
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(5)]
    record(engine, spec, rows)
    settings = Settings(
        database_url=SecretStr(str(engine.url.render_as_string(hide_password=False))),
        var_dir=tmp_path,
    )
    return Runtime(settings, engine=engine)


def test_the_batch_comes_back_when_the_status_says_the_hours_open(engine, tmp_path):
    opens = (datetime.now(VIETNAM).hour + 3) % 24  # two to three hours from now
    window = SendingWindow(time(opens), time((opens + 1) % 24))
    spec = SPEC.model_copy(update={"sending_hours": window})
    runtime = runtime_for(engine, tmp_path, spec)
    broker = use_broker(StubBroker(), runtime.settings)

    send_batch(runtime, spec.id, 1)  # the worker's own decision: wait for the hours
    (raw,) = list(broker.queues["sms.sandbox.DQ"].queue)
    comes_back = datetime.fromtimestamp(dramatiq.Message.decode(raw).options["eta"] / 1000, UTC)
    standing = explain(runtime, summarise(engine, spec.id))

    waiting = standing.summary.waiting_for
    assert waiting is not None and waiting.reason == "sending_hours"
    assert waiting.until == window.next_opening(datetime.now(VIETNAM))
    # The job is delayed a second past the opening, never before it.
    assert 0 <= (comes_back - waiting.until).total_seconds() <= 3
    assert standing.estimate.seconds is None and standing.estimate.resumes_at == waiting.until
    assert standing.summary.as_dict()["waiting_for"]["reason"] == "sending_hours"


def test_a_halted_provider_and_a_cooldown_are_read_where_the_worker_reads_them(engine, tmp_path):
    runtime = runtime_for(engine, tmp_path, SPEC)
    use_broker(StubBroker(), runtime.settings)
    halt(engine, "sandbox", "http_401 credentials refused")
    send_batch(runtime, SPEC.id, 1)  # the worker skips the halted provider's batch
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 5
    standing = explain(runtime, summarise(engine, SPEC.id))
    waiting = standing.summary.waiting_for
    assert waiting is not None and waiting.reason == "provider_halted"
    assert waiting.lifted_by == "loa provider resume sandbox" and waiting.messages == 5
    assert standing.as_dict()["providers"]["sandbox"]["halted"]["why"] == (
        "http_401 credentials refused"
    )

    from ledger.halts import clear

    clear(engine, "sandbox")
    # Embedded, the cooldown lives in the sending process: this one, here (on a clock
    # that stands still, so that the time left is exact however slow the machine).
    runtime._cooldowns["sandbox"] = LocalCooldown(clock=lambda: 1000.0)
    runtime.cooldown("sandbox").start(floor=20)
    here = explain(runtime, summarise(engine, SPEC.id), cooldowns_here=True)
    assert here.summary.waiting_for is not None
    assert here.summary.waiting_for.reason == "cooldown"
    assert here.providers["sandbox"].cooldown_seconds == 20
    # Another process cannot see it, and says so rather than "no cooldown".
    elsewhere = explain(runtime, summarise(engine, SPEC.id))
    assert elsewhere.summary.waiting_for is None
    assert elsewhere.as_dict()["providers"]["sandbox"]["cooldown_seconds"] is None
    assert "provider_cooldown_seconds" not in elsewhere.as_dict()
