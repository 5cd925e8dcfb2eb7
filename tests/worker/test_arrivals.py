"""A synthetic day of arrivals on both ledgers: a morning ferry, residents, a visitor
welcomed ten days ago, a bad row, a night bus, a late report; then the morning file
replayed. Exactly the expected welcomes, in the expected languages, due when expected."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from campaigns.arrivals import ArrivalsConfig, load_arrivals
from campaigns.hours import VIETNAM
from ledger.schema import campaigns, messages, visitors
from ledger.suppressions import add_numbers
from tests.campaigns.test_arrivals import RULES
from worker.arrivals.ingest import Ingest
from worker.queues.broker import use_broker
from worker.runtime import Runtime
from worker.settings import Settings

CONFIG = load_arrivals(RULES)
MORNING = datetime(2026, 11, 28, 10, 0, tzinfo=VIETNAM)
NIGHT = datetime(2026, 11, 28, 23, 50, tzinfo=VIETNAM)
CAMPAIGN = "arrivals-ninh-thuan-2026-11"


def runtime_for(engine, tmp_path) -> Runtime:
    url = SecretStr(str(engine.url.render_as_string(hide_password=False)))
    return Runtime(Settings(database_url=url, var_dir=tmp_path, batch_size=10), engine=engine)


def arrival(n: int, phone: str, at: str, **extra: str) -> tuple[int, dict[str, str]]:
    return n, {"event_id": f"ev-{n}", "phone": phone, "arrived_at": at, "area": "586", **extra}


def morning_file() -> list[tuple[int, dict[str, str]]]:
    ferry = "2026-11-28T09:55:00+07:00"
    rows = [arrival(i, f"+8210{i:08d}", ferry) for i in range(20)]  # Korean
    rows += [arrival(20 + i, f"+86138{i:08d}", ferry) for i in range(5)]  # Chinese
    rows += [arrival(25 + i, f"09123{i:05d}", ferry) for i in range(5)]  # domestic visitors
    rows += [arrival(30 + i, f"09124{i:05d}", ferry, home="1") for i in range(3)]  # home flag
    rows += [arrival(33, "0912500000", ferry), arrival(34, "0912500001", ferry)]  # on the list
    rows += [arrival(35, "+79161234567", ferry)]  # welcomed ten days ago
    rows += [arrival(36, "chưa có", ferry)]  # a bad row
    rows += [arrival(37, "+8210" + "00000000", ferry)]  # the first Korean again, another id
    return rows


def night_file() -> list[tuple[int, dict[str, str]]]:
    bus = "2026-11-28T23:40:00+07:00"
    rows = [arrival(100 + i, f"+7916{i:07d}", bus) for i in range(8)]  # Russian
    rows += [arrival(108, "+14155552671", bus), arrival(109, "+447911123456", bus)]
    rows += [arrival(110, "+8210" + "00000001", bus)]  # welcomed this morning
    rows += [arrival(111, "+61412345678", "2026-11-28T09:00:00+07:00")]  # reported too late
    return rows


def welcomes(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(messages.c.recipient, messages.c.language)).all())


def test_a_day_of_arrivals(engine, tmp_path):
    runtime = runtime_for(engine, tmp_path)
    broker = use_broker(StubBroker(), runtime.settings)
    add_numbers(engine, "residents", ["+84912500000", "+84912500001"], "test")
    with engine.begin() as conn:
        ten_days_ago = MORNING - timedelta(days=10)
        conn.execute(visitors.insert().values(recipient="+79161234567", welcomed_at=ten_days_ago))

    morning = Ingest(runtime, CONFIG, clock=lambda: MORNING).run(morning_file())
    assert (morning.read, morning.welcomed) == (38, 30)
    assert morning.rejected == {"bad_number": 1}
    assert morning.skipped == {"resident": 5, "already_welcomed": 2}
    assert [where for where, *_ in morning.rejects] == [36]
    languages = Counter(welcomes(engine).values())
    assert languages == {"ko": 20, "zh": 5, "vi": 5}
    # Due at once: 30 welcomes in batches of 10, on the provider's queue now.
    assert len(broker.queues["sms.sandbox"].queue) == 3

    night = Ingest(runtime, CONFIG, clock=lambda: NIGHT).run(night_file())
    assert (night.read, night.welcomed) == (12, 10)
    assert night.skipped == {"already_welcomed": 1, "validity_passed": 1}
    languages = Counter(welcomes(engine).values())
    assert languages == {"ko": 20, "zh": 5, "vi": 5, "ru": 8, "en": 2}
    # Due at 07:00 tomorrow: delayed by the 7 h 10 min from the ingest's clock.
    (due,) = {d for _, _, _, d in night.batches}
    assert due == datetime(2026, 11, 29, 7, 0, tzinfo=VIETNAM)
    delayed = broker.queues["sms.sandbox.DQ"].queue
    assert len(delayed) == 1
    job = Message.decode(delayed[0])
    assert abs(job.options["eta"] - job.message_timestamp - (7 * 3600 + 600) * 1000) < 5_000

    replay = Ingest(runtime, CONFIG, clock=lambda: MORNING + timedelta(hours=1)).run(morning_file())
    assert replay.welcomed == 0 and replay.skipped == {"repeated_event": 37}
    assert len(welcomes(engine)) == 40

    with engine.connect() as conn:
        (batches, intake) = conn.execute(
            sa.select(campaigns.c.batches, campaigns.c.intake).where(campaigns.c.id == CAMPAIGN)
        ).one()
    assert batches == 4
    assert intake["rows_read"] == 38 + 12 + 38 and intake["welcomed"] == 40
    assert intake["rejected"] == 2 and intake["rejected_by_reason"] == {"bad_number": 2}
    assert intake["suppressed"] == 5 and intake["duplicates"] == 3 + 37


def test_what_is_older_than_the_window_is_forgotten(engine):
    from ledger.arrivals import prune
    from ledger.schema import arrival_events, now

    with engine.begin() as conn:
        for days, name in ((40, "old"), (1, "recent")):
            at = now() - timedelta(days=days)
            conn.execute(arrival_events.insert().values(event_id=name, received_at=at))
            conn.execute(visitors.insert().values(recipient=f"+8210{days:08d}", welcomed_at=at))
    with engine.begin() as conn:
        assert prune(conn, timedelta(days=30)) == (1, 1)
    with engine.connect() as conn:
        assert conn.scalars(sa.select(arrival_events.c.event_id)).all() == ["recent"]
        assert conn.scalars(sa.select(visitors.c.recipient)).all() == ["+821000000001"]


def test_a_welcome_past_its_own_validity_expires_instead_of_going_out(engine, tmp_path):
    from ledger.finaliser import finalise
    from ledger.schema import now
    from ledger.summary import status_counts
    from tests.worker.test_dispatch import Recording
    from worker.sending.dispatch import send_batch

    runtime = runtime_for(engine, tmp_path)
    use_broker(StubBroker(), runtime.settings)
    moment = now()
    rows = [
        arrival(i, f"+8210{20000000 + i}", (moment - timedelta(minutes=5)).isoformat())
        for i in range(4)
    ]
    # Rules without sending hours, so the welcomes are due at once whatever the hour.
    anytime = ArrivalsConfig(CONFIG.spec.model_copy(update={"sending_hours": None}), CONFIG.rules)
    Ingest(runtime, anytime, clock=lambda: moment).run(rows)
    campaign = CONFIG.campaign_id(moment)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(messages.c.id, messages.c.valid_until).order_by(messages.c.id)
        ).all()
    assert all(
        abs((v - moment - timedelta(hours=11, minutes=55)).total_seconds()) < 2 for _, v in stored
    )

    def run_out(message_id: int) -> None:  # the provider was down for half a day
        gone = moment - timedelta(minutes=1)
        with engine.begin() as conn:
            conn.execute(
                sa.update(messages).where(messages.c.id == message_id).values(valid_until=gone)
            )

    run_out(stored[0].id)
    assert finalise(engine)["expired"] == 1  # the finaliser finds it still queued
    run_out(stored[1].id)
    recording = Recording()
    runtime._providers["sandbox"] = recording
    send_batch(runtime, campaign, 1)  # the worker finds it in the batch it claims
    assert {m.message_id for m in recording.sent} == {stored[2].id, stored[3].id}
    counts = status_counts(engine, campaign)
    assert (counts["expired"], counts["sent"]) == (2, 2)


def test_a_queue_away_after_the_commit_loses_no_event(engine, tmp_path, monkeypatch):
    """Enqueueing failed after the chunk's commit once answered "nothing was taken" while
    the events were taken, so the retry welcomed nobody. Now the ingest says how many
    batches wait for the housekeeper, and the welcomes are in the ledger."""
    import worker.arrivals.ingest

    def away(*_args, **_kwargs):
        raise ConnectionError("the queue is away")

    monkeypatch.setattr(worker.arrivals.ingest, "enqueue_batch", away)
    runtime = runtime_for(engine, tmp_path)
    try:
        result = Ingest(runtime, CONFIG, clock=lambda: MORNING).run(morning_file()[:3])
    finally:
        runtime.close()
    assert result.welcomed == 3 and result.unqueued == len(result.batches) == 1
    assert result.as_dict()["batches_not_queued"] == 1
    with engine.connect() as conn:
        queued = conn.scalar(
            sa.select(sa.func.count()).select_from(messages).where(messages.c.status == "queued")
        )
    assert queued == 3  # the housekeeper's rescue enqueues their batch again


def test_a_rejected_event_counts_in_its_arrivals_month_not_the_ingests(engine, tmp_path):
    """Last evening's feed read at 03:10 on the 1st: the bad number belongs to November's
    figures beside its good neighbours, and no December campaign is opened to hold it
    alone. An event whose time cannot be read counts in the month it was received."""
    runtime = runtime_for(engine, tmp_path)
    use_broker(StubBroker(), runtime.settings)
    after_midnight = datetime(2026, 12, 1, 3, 10, tzinfo=VIETNAM)
    evening = "2026-11-30T21:00:00+07:00"
    feed = [
        arrival(1, "+8210" + "00000001", evening),
        arrival(2, "+8210" + "00000002", evening),
        arrival(3, "abc", evening),
    ]
    Ingest(runtime, CONFIG, clock=lambda: after_midnight).run(feed)
    with engine.connect() as conn:
        opened = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.intake)).all())
    assert list(opened) == [CAMPAIGN[:-2] + "11"]
    november = opened[CAMPAIGN[:-2] + "11"]
    assert (november["rows_read"], november["welcomed"], november["rejected"]) == (3, 2, 1)

    Ingest(runtime, CONFIG, clock=lambda: after_midnight).run([arrival(4, "abc", "yesterday")])
    with engine.connect() as conn:
        opened = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.intake)).all())
    assert opened[CAMPAIGN[:-2] + "12"]["rejected_by_reason"] == {"bad_number": 1}
    assert opened[CAMPAIGN[:-2] + "11"]["rows_read"] == 3
