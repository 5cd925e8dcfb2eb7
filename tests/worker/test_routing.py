"""A campaign routed to several providers, on a real ledger: each provider's share goes
through it alone, and a halted provider's waiting messages go to the fallback."""

from __future__ import annotations

import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.schema import events, messages
from ledger.summary import queued_batches, status_counts, summarise
from providers import ErrorKind, SendError
from tests.helpers import record
from tests.worker.test_dispatch import SPEC, Recording, Refusing, runtime_for
from worker.queues.broker import use_broker
from worker.sending.dispatch import send_batch

VIETNAMESE = [f"0961{i:06d}" for i in range(6)] + [f"0901{i:06d}" for i in range(6)]
FOREIGN = [f"+8210{i:08d}" for i in range(5)]
HALT = SendError(ErrorKind.HALT, "http_401", "credentials refused")


def routed(**routing) -> CampaignSpec:
    return CampaignSpec.model_validate({**SPEC.model_dump(mode="json"), "routing": routing})


def rows(numbers: list[str]) -> list[ListRow]:
    return [ListRow(row=i + 2, phone=number, values=()) for i, number in enumerate(numbers)]


def recording(name: str, countries: frozenset[str] | None = None) -> Recording:
    provider = Recording()
    provider.name, provider.countries = name, countries
    return provider


def add(runtime, *providers) -> None:
    for provider in providers:
        runtime._providers[provider.name] = provider


def stub_broker(runtime, *names: str) -> StubBroker:
    """A stub broker with the queues of the sandbox and of these provider doubles."""
    broker = use_broker(StubBroker(), runtime.settings)
    for name in names:
        broker.declare_queue(f"sms.{name}")
    return broker


def jobs(broker: StubBroker, queue: str) -> list[tuple]:
    import dramatiq

    return [tuple(dramatiq.Message.decode(raw).args) for raw in broker.queues[queue].queue]


def test_each_provider_sends_its_own_share_of_a_routed_campaign(engine, tmp_path):
    spec = routed(carriers={"viettel": "viettel-gw"}, countries={"other": "intl"})
    intake = record(engine, spec, rows(VIETNAMESE + FOREIGN), batch_size=4)
    # One provider per batch, numbered across the campaign: 6 Viettel, 6 MobiFone (the
    # default, "sandbox"), 5 Korean numbers.
    assert sorted(intake.batches) == [
        (1, "viettel-gw"), (2, "viettel-gw"), (3, "sandbox"), (4, "sandbox"),
        (5, "intl"), (6, "intl"),
    ]  # fmt: skip
    with engine.connect() as conn:
        mixed = conn.execute(
            sa.select(messages.c.batch)
            .group_by(messages.c.batch)
            .having(sa.func.count(sa.distinct(messages.c.provider)) > 1)
        ).all()
    assert mixed == []

    default, viettel, intl = recording("sandbox"), recording("viettel-gw"), recording("intl")
    runtime = runtime_for(engine, tmp_path, default)
    add(runtime, viettel, intl)
    for batch, provider in intake.batches:
        send_batch(runtime, spec.id, batch, provider)
    assert sorted(m.to[:5] for m in viettel.sent) == ["+8496"] * 6
    assert sorted(m.to[:5] for m in default.sent) == ["+8490"] * 6
    assert sorted(m.to[:5] for m in intl.sent) == ["+8210"] * 5
    assert status_counts(engine, spec.id)[Status.SENT] == 17


def test_a_job_claims_only_its_own_providers_rows(engine, tmp_path):
    spec = routed(countries={"other": "intl"})
    intake = record(engine, spec, rows(VIETNAMESE[:3] + FOREIGN[:3]), batch_size=20)
    default = recording("sandbox")
    runtime = runtime_for(engine, tmp_path, default)
    add(runtime, recording("intl"))
    (batch, _), _ = sorted(intake.batches, key=lambda pair: pair[1] != "sandbox")
    send_batch(runtime, spec.id, batch, "sandbox")
    assert len(default.sent) == 3
    assert queued_batches(engine, spec.id) == [(2, "intl")]


def test_a_halt_hands_the_waiting_messages_to_the_fallback(engine, tmp_path):
    spec = routed(fallback=["backup"])
    record(engine, spec, rows(VIETNAMESE), batch_size=20)
    refusing, backup = Refusing(HALT), recording("backup")
    runtime = runtime_for(engine, tmp_path, refusing, send_concurrency=1)
    add(runtime, backup)
    broker = stub_broker(runtime, "backup")

    send_batch(runtime, spec.id, 1, "sandbox")
    assert len(refusing.sent) == 1  # the halt came at once
    assert jobs(broker, "sms.backup") == [(spec.id, 1, "backup")]  # the fallback's share
    assert queued_batches(engine, spec.id) == [(1, "backup")]  # nothing left for "sandbox"
    assert summarise(engine, spec.id).progress_state == "running"

    send_batch(runtime, spec.id, 1, "sandbox")  # a late job for the halted provider
    assert len(refusing.sent) == 1
    send_batch(runtime, spec.id, 1, "backup")
    assert len(backup.sent) == 12
    assert status_counts(engine, spec.id)[Status.SENT] == 12
    with engine.connect() as conn:
        details = conn.scalars(sa.select(events.c.detail).where(events.c.message_id.is_(None)))
        (detail,) = [d for d in details if d and "rerouted" in d]
    assert detail == {
        "rerouted": 12,
        "batch": 1,
        "from_provider": "sandbox",
        "to_provider": "backup",
    }


def test_what_no_fallback_can_reach_waits_for_the_operator(engine, tmp_path):
    from worker.campaign.control import resume_provider

    spec = routed(countries={"other": "intl"}, fallback=["backup"])
    intake = record(engine, spec, rows(VIETNAMESE[:4] + FOREIGN), batch_size=20)
    default, refusing = recording("sandbox"), Refusing(HALT)
    refusing.name = "intl"
    runtime = runtime_for(engine, tmp_path, default, send_concurrency=1)
    add(runtime, refusing, recording("backup", countries=frozenset({"VN"})))
    broker = stub_broker(runtime, "backup", "intl")

    for batch, provider in intake.batches:
        send_batch(runtime, spec.id, batch, provider)
    assert len(default.sent) == 4
    assert broker.queues["sms.backup"].qsize() == 0  # a Vietnamese gateway takes no +82
    summary = summarise(engine, spec.id)
    assert summary.statuses[Status.QUEUED] == 5  # waiting, not lost and not failed
    assert summary.progress_state == "halted"  # nothing left can move by itself
    assert summary.state_reason == "provider intl halted: http_401 credentials refused"
    assert summary.as_dict()["halted_providers"] == {"intl": "http_401 credentials refused"}

    assert resume_provider(runtime, "intl") == 1
    assert jobs(broker, "sms.intl") == [(spec.id, 2, "intl")]


def test_a_provider_halt_that_leaves_others_sending_is_not_a_campaign_halt(engine, tmp_path):
    from ledger.halts import halt

    spec = routed(countries={"other": "intl"})
    record(engine, spec, rows(VIETNAMESE[:2] + FOREIGN[:2]), batch_size=20)
    halt(engine, "intl", "103 balance exhausted")
    summary = summarise(engine, spec.id)
    assert summary.progress_state == "running"  # the default provider still has work
    assert summary.state_reason == "provider intl halted: 103 balance exhausted"


class HaltsAfter(Recording):
    """Accepts the first ``accepted`` messages, times out on the next one after sending it
    (it may have gone out), then refuses everything with a halt: a balance that ran out
    mid-batch."""

    def __init__(self, accepted: int):
        super().__init__()
        self.accepted = accepted
        self.calls: list[int] = []

    async def send(self, message):
        self.calls.append(message.message_id)
        if len(self.calls) <= self.accepted:
            return await super().send(message)
        if len(self.calls) == self.accepted + 1:
            raise TimeoutError("read timeout after sending")
        raise HALT

    def classify(self, error):
        if isinstance(error, TimeoutError):
            return SendError(ErrorKind.AMBIGUOUS, "read_timeout")
        return error


def test_a_halt_hands_over_only_what_never_reached_the_halted_provider(engine, tmp_path):
    """Two messages accepted and one timed out before the halt: all three may be on a
    handset already, and their receipts will come from the halted provider, so they stay
    with it. Only the messages it never got go to the fallback."""
    from ledger.messages import apply_receipt

    spec = routed(fallback=["backup"])
    record(engine, spec, rows(VIETNAMESE), batch_size=20)
    halting, backup = HaltsAfter(accepted=2), recording("backup")
    runtime = runtime_for(engine, tmp_path, halting, send_concurrency=1)
    add(runtime, backup)
    broker = stub_broker(runtime, "backup")

    send_batch(runtime, spec.id, 1, "sandbox")
    accepted, timed_out, refused = halting.calls[:2], halting.calls[2], halting.calls[3]
    assert len(halting.calls) == 4  # nothing more once it halted (one sender)
    assert jobs(broker, "sms.backup") == [(spec.id, 1, "backup")]
    with engine.connect() as conn:
        where = dict(conn.execute(sa.select(messages.c.id, messages.c.provider)).all())
    assert {where[i] for i in accepted} == {"sandbox"}
    assert where[timed_out] == "sandbox"
    assert where[refused] == "backup"  # refused unprocessed: safe to offer elsewhere
    assert list(where.values()).count("backup") == 9

    send_batch(runtime, spec.id, 1, "backup")
    assert sorted(m.message_id for m in backup.sent) == sorted(
        i for i, name in where.items() if name == "backup"
    )
    # The halted provider's receipt for a message it took still lands on that message.
    assert apply_receipt(engine, "sandbox", f"R{accepted[0]}", Status.DELIVERED, None).moved
    counts = status_counts(engine, spec.id)
    assert (counts[Status.SENT], counts[Status.DELIVERED], counts[Status.UNKNOWN]) == (10, 1, 1)
