"""A small campaign end to end through a real dramatiq Worker: in-memory broker on
SQLite, and a real RedisBroker on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from benchmarks.generate_list import write as write_list
from campaigns.status import FINAL, Status
from ledger.migrate import upgrade
from ledger.schema import events, messages
from worker.campaign.embedded import wait_for_campaign
from worker.campaign.launch import launch
from worker.queues.broker import use_broker
from worker.queues.jobs import enqueue_batch
from worker.runtime import Runtime, set_runtime
from worker.settings import ProviderInstance, Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml"

BACKENDS = [
    pytest.param(("stub_broker", "sqlite_url"), id="stub-sqlite"),
    pytest.param(
        ("redis_broker", "postgres_url"),
        id="redis-postgres",
        marks=[pytest.mark.redis, pytest.mark.postgres],
    ),
]


@pytest.fixture(params=BACKENDS)
def pipeline(request, tmp_path):
    """A runtime and a running dramatiq Worker on one broker/ledger pair."""
    broker_name, ledger_name = request.param
    broker = request.getfixturevalue(broker_name)
    url = request.getfixturevalue(ledger_name)

    def start(**sandbox):
        settings = Settings(
            database_url=SecretStr(url),
            var_dir=tmp_path,
            batch_size=25,
            worker_threads=4,
            providers={
                "sandbox": ProviderInstance(
                    type="sandbox",
                    latency_ms=0,
                    receipt_min_delay_ms=10,
                    receipt_max_delay_ms=100,
                    **sandbox,
                )
            },
        )
        runtime = Runtime(settings)
        upgrade(runtime.engine)  # as `loa db upgrade` does before workers start
        use_broker(broker, settings)
        set_runtime(runtime)
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        request.addfinalizer(runtime.close)
        request.addfinalizer(worker.stop)
        return runtime, broker if broker_name == "stub_broker" else None

    return start


def list_file(tmp_path, rows: int) -> Path:
    path = tmp_path / "residents.csv"
    write_list(path, rows, seed=11)
    return path


def per_message(engine, to_status: str) -> dict[int, int]:
    query = (
        sa.select(events.c.message_id, sa.func.count())
        .where(events.c.to_status == to_status, events.c.message_id.is_not(None))
        .group_by(events.c.message_id)
    )
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def test_every_recipient_ends_in_exactly_one_final_state(pipeline, tmp_path):
    runtime, stub = pipeline(
        retryable_rate=0.1, permanent_rate=0.05, ambiguous_rate=0.05, undelivered_rate=0.1
    )
    launched = launch(runtime, EXAMPLE, list_file(tmp_path, 300))
    summary = wait_for_campaign(runtime, stub, launched.campaign_id, timeout=600)  # bounds a hang

    assert summary.done, summary.as_dict()
    intake = summary.campaign.intake
    assert (
        intake["rows_read"] == 300 == summary.recipients + intake["rejected"] + intake["duplicates"]
    )
    for status in (Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.UNKNOWN):
        assert summary.statuses[status] > 0, status  # every path was taken
    with runtime.engine.connect() as conn:
        statuses = conn.execute(sa.select(messages.c.status)).scalars().all()
        last_event = dict(
            conn.execute(
                sa.select(events.c.message_id, events.c.to_status)
                .where(events.c.message_id.is_not(None))
                .order_by(events.c.id)
            ).all()
        )
        final_rows = dict(conn.execute(sa.select(messages.c.id, messages.c.status)).all())
    assert all(Status(s) in FINAL for s in statuses)
    assert last_event == final_rows  # the event log tells the same story as the rows
    assert all(n == 1 for n in per_message(runtime.engine, "sent").values())


def test_a_batch_delivered_twice_sends_nothing_twice(pipeline, tmp_path):
    runtime, stub = pipeline(retryable_rate=0, permanent_rate=0, ambiguous_rate=0)
    launched = launch(runtime, EXAMPLE, list_file(tmp_path, 200))
    for batch in range(1, launched.batches_enqueued + 1):  # every job delivered a second time
        enqueue_batch("sandbox", launched.campaign_id, batch)
    summary = wait_for_campaign(runtime, stub, launched.campaign_id, timeout=600)  # bounds a hang
    assert summary.done

    claims = per_message(runtime.engine, "sending")
    sends = per_message(runtime.engine, "sent")
    assert len(sends) == summary.recipients
    assert set(claims.values()) == {1} and set(sends.values()) == {1}


def test_a_halting_provider_stops_the_campaign_and_loses_nothing(pipeline, tmp_path):
    runtime, stub = pipeline(halt_rate=1, retryable_rate=0, permanent_rate=0, ambiguous_rate=0)
    launched = launch(runtime, EXAMPLE, list_file(tmp_path, 100))
    summary = wait_for_campaign(runtime, stub, launched.campaign_id, timeout=600)  # bounds a hang
    assert summary.progress_state == "halted"
    assert "provider sandbox halted: 0x0E" in summary.state_reason
    # Nothing was sent and nothing is lost: every recipient is queued for a resume.
    assert summary.statuses[Status.QUEUED] == summary.recipients > 0


def test_the_providers_rate_holds_the_pace(pipeline, tmp_path):
    import time

    runtime, stub = pipeline(
        retryable_rate=0, permanent_rate=0, ambiguous_rate=0, rate_per_second=100, burst=5
    )
    started = time.monotonic()
    launched = launch(runtime, EXAMPLE, list_file(tmp_path, 150))
    summary = wait_for_campaign(runtime, stub, launched.campaign_id, timeout=600)  # bounds a hang
    assert summary.done
    # Every recipient took a token: they cannot all have gone faster than the rate allows.
    assert time.monotonic() - started >= (summary.recipients - 5) / 100 * 0.95
