"""``send_batch`` against a real ledger, called directly (no broker needed on these paths)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from campaigns.limits import Limits
from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from campaigns.status import Status
from ledger.schema import campaigns, now
from ledger.summary import status_counts, summarise
from providers.sandbox import SandboxConfig
from tests.helpers import record
from worker.runtime import Runtime
from worker.sending.dispatch import send_batch
from worker.settings import Settings

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml")


def runtime_with_campaign(engine, tmp_path) -> Runtime:
    settings = Settings(
        database_url=SecretStr(str(engine.url.render_as_string(hide_password=False))),
        var_dir=tmp_path,
    )
    runtime = Runtime(settings, engine=engine)
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(20)]
    record(engine, SPEC, rows)
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
    config = SandboxConfig()  # no rate limit
    idempotent = False  # no key: every group is marked handed before it goes
    limits = Limits()  # takes any text
    listens = False  # its receipts (none) would come to the webhook

    def __init__(self):
        self.sent = []

    async def send(self, message):
        from providers import SendResult

        self.sent.append(message)
        return SendResult(provider_message_id=f"R{message.message_id}")

    def classify(self, error):  # pragma: no cover - nothing fails here
        raise error

    async def aclose(self):
        pass


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
    rows = [ListRow(2, "0912345678", ("1", "Đặng Thị Hương", "Ninh Hải"))]
    record(engine, spec, rows, columns)
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
    from worker.queues.broker import use_broker

    local = datetime.now(VIETNAM)
    # A window that opens in two to three hours: still more than one away if an hour
    # turns while the test runs.
    opens = (local.hour + 3) % 24
    window = SendingWindow(time(opens), time((opens + 1) % 24))
    spec = SPEC.model_copy(update={"sending_hours": window})
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(5)]
    record(engine, spec, rows)
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


class Gathering(Recording):
    """Holds each send until ``width`` sends are in flight together: a batch sent one at a
    time would never gather them, and every message would time out."""

    def __init__(self, width):
        super().__init__()
        self.width, self.waiting, self.gathered = width, 0, None

    async def send(self, message):
        import asyncio

        self.gathered = self.gathered or asyncio.Event()  # made on the sending loop
        self.waiting += 1
        if self.waiting >= self.width:
            self.gathered.set()
        async with asyncio.timeout(10):
            await self.gathered.wait()
        return await super().send(message)


def runtime_for(engine, tmp_path, provider, **settings) -> Runtime:
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    runtime = Runtime(Settings(database_url=url, var_dir=tmp_path, **settings), engine=engine)
    runtime._providers["sandbox"] = provider
    return runtime


def test_a_batch_is_sent_concurrently_and_each_message_once(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    provider = Gathering(width=4)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=4)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert sorted(m.message_id for m in provider.sent) == sorted(
        {m.message_id for m in provider.sent}
    )


class Refusing(Recording):
    def __init__(self, error):
        super().__init__()
        self.error = error

    async def send(self, message):
        self.sent.append(message)
        raise self.error

    def classify(self, error):
        return error


def test_retry_after_is_respected(engine, tmp_path):
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from providers import ErrorKind, SendError
    from worker.queues.broker import use_broker

    runtime_with_campaign(engine, tmp_path)
    runtime = runtime_for(
        engine, tmp_path, Refusing(SendError(ErrorKind.RETRYABLE, "http_429", retry_after=120))
    )
    broker = use_broker(StubBroker(), runtime.settings)
    before = time.time()
    send_batch(runtime, SPEC.id, 1)
    after = time.time()
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20  # released, not failed
    (raw,) = list(broker.queues["sms.sandbox.DQ"].queue)
    eta = dramatiq.Message.decode(raw).options["eta"] / 1000
    # Retry-After (120 s) from the refusal, which came during send_batch: bounds that
    # hold however long the batch took.
    assert before + 120 - 1 <= eta <= after + 120 + 1


def test_a_halt_mid_batch_releases_everything_not_handed_over(engine, tmp_path):
    from providers import ErrorKind, SendError

    runtime_with_campaign(engine, tmp_path)
    provider = Refusing(SendError(ErrorKind.HALT, "http_401", "credentials refused"))
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=4)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20
    assert 1 <= len(provider.sent) <= 4  # what was already in flight when the halt came
    summary = summarise(engine, SPEC.id)
    assert summary.progress_state == "halted"
    assert summary.state_reason == "provider sandbox halted: http_401 credentials refused"


def test_a_halted_provider_stops_its_campaigns_only_and_resume_sends_the_rest(engine, tmp_path):
    from dramatiq.brokers.stub import StubBroker

    from ledger.halts import halted
    from providers import ErrorKind, SendError
    from worker.campaign.control import resume_provider
    from worker.queues.broker import use_broker

    runtime_with_campaign(engine, tmp_path)
    other = SPEC.model_copy(update={"id": "other-campaign", "provider": "backup"})
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(5)]
    record(engine, other, rows)

    refusing = Refusing(SendError(ErrorKind.HALT, "http_401", "credentials refused"))
    runtime = runtime_for(engine, tmp_path, refusing, send_concurrency=1)
    backup = Recording()
    backup.name = "backup"
    runtime._providers["backup"] = backup
    send_batch(runtime, SPEC.id, 1)
    assert halted(engine, "sandbox") is not None
    send_batch(runtime, SPEC.id, 1)  # a later job for the halted provider does nothing
    assert len(refusing.sent) == 1
    send_batch(runtime, other.id, 1)  # the other provider goes on
    assert status_counts(engine, other.id)[Status.SENT] == 5

    # The operator fixes the credentials and resumes: the waiting batch goes out.
    broker = use_broker(StubBroker(), runtime.settings)
    assert resume_provider(runtime, "sandbox") == 1
    assert len(broker.queues["sms.sandbox"].queue) == 1
    recording = Recording()
    runtime._providers["sandbox"] = recording
    runtime._lanes.pop("sandbox", None)  # its senders call the provider they were made with
    send_batch(runtime, SPEC.id, 1)
    assert len(recording.sent) == 20 and summarise(engine, SPEC.id).progress_state == "running"


def test_the_reaper_settles_what_a_dead_worker_left_sending(engine, tmp_path):
    """A worker claimed a batch, handed three messages to the provider, and died."""
    from dramatiq.brokers.stub import StubBroker

    from ledger.handover import mark_handed
    from ledger.messages import claim_batch
    from ledger.schema import messages
    from worker.queues.broker import use_broker
    from worker.upkeep.recovery import reap_stale

    runtime = runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    for message in claimed[:3]:
        assert mark_handed(engine, [message.id], message.claim) == {message.id}
    broker = use_broker(StubBroker(), runtime.settings)

    assert reap_stale(runtime) == {
        "requeued": 0,
        "unknown": 0,
        "batches": 0,
        "stranded": 0,
    }  # lease not over
    with engine.begin() as conn:  # time passes: the claim is older than the lease
        conn.execute(sa.update(messages).values(claimed_at=now() - timedelta(hours=1)))
    assert reap_stale(runtime) == {"requeued": 17, "unknown": 3, "batches": 1, "stranded": 0}
    counts = status_counts(engine, SPEC.id)
    assert (counts[Status.QUEUED], counts[Status.UNKNOWN], counts[Status.SENDING]) == (17, 3, 0)
    assert len(broker.queues["sms.sandbox"].queue) == 1  # the batch is back on its queue

    # The batch runs again: the 17 go out, the 3 that may have gone out are not resent.
    recording = Recording()
    runtime._providers["sandbox"] = recording
    send_batch(runtime, SPEC.id, 1)
    assert len(recording.sent) == 17
    assert not {m.id for m in claimed[:3]} & {m.message_id for m in recording.sent}


def test_with_an_idempotency_key_the_reaper_sends_handed_messages_again(engine, tmp_path):
    """The same dead worker, on a provider whose resends carry the same key: nothing is
    left in doubt, every message goes back to the queue."""
    from dramatiq.brokers.stub import StubBroker

    from ledger.handover import mark_handed
    from ledger.messages import claim_batch
    from ledger.schema import messages
    from worker.queues.broker import use_broker
    from worker.upkeep.recovery import reap_stale

    runtime_with_campaign(engine, tmp_path)
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    keyed = {"sandbox": {"type": "sandbox", "idempotency_keys": True}}
    runtime = Runtime(Settings(database_url=url, var_dir=tmp_path, providers=keyed), engine)
    claimed = claim_batch(engine, SPEC.id, 1)
    marked = [m.id for m in claimed[:3]]
    assert mark_handed(engine, marked, claimed[0].claim) == set(marked)
    use_broker(StubBroker(), runtime.settings)
    with engine.begin() as conn:
        conn.execute(sa.update(messages).values(claimed_at=now() - timedelta(hours=1)))
    assert reap_stale(runtime) == {"requeued": 20, "unknown": 0, "batches": 1, "stranded": 0}
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20


def test_a_batch_given_back_whose_job_was_lost_is_enqueued_again(engine, tmp_path):
    """A worker gave its claimed messages back because Redis went away; dramatiq's retry
    could not be enqueued in the same outage, so no job will come for them. The reaper
    enqueues their batch again once they have waited a lease, once per lease."""
    from dramatiq.brokers.stub import StubBroker

    from ledger.messages import claim_batch, release
    from ledger.schema import messages
    from worker.queues.broker import use_broker
    from worker.upkeep.recovery import reap_stale

    runtime = runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    release(engine, [m.id for m in claimed], code="worker_error", refund=True)
    broker = use_broker(StubBroker(), runtime.settings)
    queue = broker.queues["sms.sandbox"].queue

    assert reap_stale(runtime)["stranded"] == 0  # given back just now: its retry may come
    with engine.begin() as conn:  # a lease later, still queued: no job came
        conn.execute(sa.update(messages).values(updated_at=now() - timedelta(hours=1)))
    assert reap_stale(runtime)["stranded"] == 20 and len(queue) == 1
    assert reap_stale(runtime)["stranded"] == 0 and len(queue) == 1  # not again at once

    # Never claimed (the launch's own job is on its way) or paused: not stranded.
    with engine.begin() as conn:
        conn.execute(sa.update(messages).values(updated_at=now() - timedelta(hours=1)))
        conn.execute(sa.text("UPDATE campaigns SET state = 'paused'"))
    assert reap_stale(runtime)["stranded"] == 0

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE campaigns SET state = 'running'"))
    recording = Recording()
    runtime._providers["sandbox"] = recording
    send_batch(runtime, SPEC.id, 1)  # the job that was enqueued again sends them once
    assert len(recording.sent) == 20
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 0


def test_a_message_the_reaper_took_back_is_not_sent_by_the_late_worker(engine, tmp_path):
    from ledger.handover import mark_handed
    from ledger.messages import claim_batch, record_outcome

    runtime_with_campaign(engine, tmp_path)
    (first, *_) = claim_batch(engine, SPEC.id, 1)
    record_outcome(engine, first.id, Status.QUEUED, "reaper", "lease_expired")
    assert not mark_handed(engine, [first.id], first.claim)


class Flaky(Recording):
    """Times out after sending the first time, then answers "already accepted" with the
    id it gave the first time, as a gateway with an idempotency key does."""

    def __init__(self, idempotent):
        super().__init__()
        self._idempotent = idempotent
        self.accepted: set[int] = set()

    @property
    def idempotent(self):
        return self._idempotent

    async def send(self, message):
        from providers import SendResult

        self.sent.append(message)
        if message.message_id not in self.accepted:
            self.accepted.add(message.message_id)
            raise TimeoutError("read timeout after sending")
        return SendResult(provider_message_id=f"R{message.message_id}")

    def classify(self, error):
        from providers import ErrorKind, SendError

        return SendError(ErrorKind.AMBIGUOUS, "read_timeout")


def test_an_ambiguous_send_is_resent_only_with_an_idempotency_key(engine, tmp_path):
    from dramatiq.brokers.stub import StubBroker

    from worker.queues.broker import use_broker

    runtime_with_campaign(engine, tmp_path)
    without = Flaky(idempotent=False)
    runtime = runtime_for(engine, tmp_path, without, send_concurrency=1)
    use_broker(StubBroker(), runtime.settings)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.UNKNOWN] == 20  # not resent: might be a duplicate
    assert len(without.sent) == 20


def test_with_an_idempotency_key_the_resend_settles_it(engine, tmp_path):
    from dramatiq.brokers.stub import StubBroker

    from worker.queues.broker import use_broker

    runtime_with_campaign(engine, tmp_path)
    keyed = Flaky(idempotent=True)
    runtime = runtime_for(engine, tmp_path, keyed, send_concurrency=1)
    use_broker(StubBroker(), runtime.settings)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20  # released for a resend
    send_batch(runtime, SPEC.id, 1)  # the delayed retry, run now
    assert status_counts(engine, SPEC.id)[Status.SENT] == 20
    assert len(keyed.accepted) == 20  # every message accepted once, whatever was resent


@pytest.mark.parametrize("given_back", ["down", "untouched", "retry"])
def test_a_batch_past_its_lease_gives_back_nothing_another_worker_now_holds(
    engine, tmp_path, given_back
):
    """Batch A waited past the lease; the reaper gave its rows to batch B, which is
    sending them; A's follow-up (a long cooldown, a halt, a retry) gives back nothing of
    them: given back, a third claim sent them twice."""
    from dramatiq.brokers.stub import StubBroker

    from ledger.lease import reap
    from ledger.messages import claim_batch
    from ledger.schema import messages
    from providers import ErrorKind, SendError
    from worker.queues.broker import use_broker
    from worker.sending.batch import BatchOutcome
    from worker.sending.dispatch import _follow_up

    runtime = runtime_with_campaign(engine, tmp_path)
    use_broker(StubBroker(), runtime.settings)
    slow = claim_batch(engine, SPEC.id, 1)
    with engine.begin() as conn:
        conn.execute(sa.update(messages).values(claimed_at=now() - timedelta(hours=1)))
    reap(engine, timedelta(minutes=5))
    taker = claim_batch(engine, SPEC.id, 1)
    error = SendError(ErrorKind.RETRYABLE, "0x14", provider_wide=True)
    outcome = {
        "down": BatchOutcome(down=slow),
        "untouched": BatchOutcome(halt=SendError(ErrorKind.HALT, "0x0E"), untouched=slow),
        "retry": BatchOutcome(retry=[(m, error) for m in slow]),
    }[given_back]
    _follow_up(runtime, SPEC, "sandbox", SPEC.id, 1, outcome)
    with engine.connect() as conn:
        rows = set(conn.execute(sa.select(messages.c.status, messages.c.claim_token)).all())
    assert rows == {("sending", taker[0].claim)}


def test_a_channel_that_cannot_reach_someone_records_them_unreachable(engine, tmp_path):
    """``unreachable`` is its own outcome (what sends the next channel), not ``failed``,
    and charges nothing but the one attempt."""
    from providers import ErrorKind, SendError

    runtime_with_campaign(engine, tmp_path)
    provider = Refusing(SendError(ErrorKind.UNREACHABLE, "-118", "no Zalo account"))
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=4)
    send_batch(runtime, SPEC.id, 1)
    counts = status_counts(engine, SPEC.id)
    assert counts[Status.UNREACHABLE] == 20 and counts[Status.FAILED] == 0
    assert len(provider.sent) == 20


def test_a_campaign_wide_refusal_pauses_the_campaign_not_the_provider(engine, tmp_path):
    """A template the provider does not know: the campaign pauses at its first refusal
    with the reason, every message queued again (none charged, none failed), and the
    provider stays free for other campaigns."""
    from ledger.halts import halted
    from providers import ErrorKind, SendError

    runtime_with_campaign(engine, tmp_path)
    refusal = SendError(ErrorKind.PERMANENT, "-109", "template id invalid", campaign_wide=True)
    provider = Refusing(refusal)
    runtime = runtime_for(engine, tmp_path, provider, send_concurrency=1)
    send_batch(runtime, SPEC.id, 1)
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 20
    assert len(provider.sent) == 1
    summary = summarise(engine, SPEC.id)
    assert summary.progress_state == "paused"
    assert summary.state_reason.startswith("sandbox: -109 template id invalid; ")
    assert "launch it under a new id" in summary.state_reason
    assert halted(engine, "sandbox") is None
    with engine.connect() as conn:
        attempts = conn.scalars(sa.text("SELECT DISTINCT attempts FROM messages")).all()
    assert attempts == [0]  # given back free of charge
