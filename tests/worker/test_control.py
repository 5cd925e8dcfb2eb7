"""Pause, resume and cancel: where each applies, and every recipient of a cancelled
campaign ending ``cancelled`` even when a claim is given back after the cancel."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from campaigns.status import Status
from ledger.handover import record_sent
from ledger.messages import cancel_campaign, claim_batch, record_outcome, release
from ledger.schema import campaigns, messages
from ledger.summary import CampaignStateError, load_campaign, status_counts
from tests.worker.test_dispatch import SPEC, runtime_with_campaign
from worker.campaign import control


def _settle_everything(engine) -> None:
    """Every message of the campaign sent, then delivered: nothing left to send."""
    for batch in (1,):
        claimed = claim_batch(engine, SPEC.id, batch)
        record_sent(engine, SPEC.id, [(m.id, f"p{m.id}") for m in claimed])
        for message in claimed:
            record_outcome(engine, message.id, Status.DELIVERED, "receipt")


def test_a_campaign_with_nothing_left_to_send_cannot_be_paused_or_cancelled(engine, tmp_path):
    runtime = runtime_with_campaign(engine, tmp_path)
    _settle_everything(engine)
    for action in (control.pause, control.cancel, control.resume):
        with pytest.raises(CampaignStateError, match="nothing left to send"):
            action(runtime, SPEC.id)
    assert load_campaign(engine, SPEC.id).state == "running"  # nothing changed
    assert status_counts(engine, SPEC.id)[Status.DELIVERED] == 20


def test_a_paused_campaign_that_finished_meanwhile_cannot_be_cancelled(engine, tmp_path):
    runtime = runtime_with_campaign(engine, tmp_path)
    assert control.pause(runtime, SPEC.id) == 1
    assert control.pause(runtime, SPEC.id) == 0  # already paused: nothing to do, no error
    _settle_everything(engine)  # what workers had claimed before the pause finishes
    with pytest.raises(CampaignStateError, match="nothing left to send"):
        control.cancel(runtime, SPEC.id)
    assert load_campaign(engine, SPEC.id).state == "paused"


def test_resume_puts_a_paused_campaigns_batches_back_and_they_are_sent(engine, tmp_path):
    from tests.worker.test_dispatch import Recording, runtime_for
    from worker.campaign.embedded import embedded_worker, wait_for_campaign
    from worker.sending.dispatch import send_batch

    runtime_with_campaign(engine, tmp_path)
    provider = Recording()
    runtime = runtime_for(engine, tmp_path, provider)
    assert control.pause(runtime, SPEC.id) == 1
    send_batch(runtime, SPEC.id, 1)  # a job that comes while paused claims nothing
    assert provider.sent == [] and status_counts(engine, SPEC.id)[Status.QUEUED] == 20
    with embedded_worker(runtime) as broker:
        assert control.resume(runtime, SPEC.id) == 1  # the campaign's one batch
        summary = wait_for_campaign(runtime, broker, SPEC.id, timeout=600)  # bounds a hang
    assert summary.statuses[Status.SENT] == 20 and len(provider.sent) == 20


def test_commands_refused_by_state_name_it(engine, tmp_path):
    runtime = runtime_with_campaign(engine, tmp_path)
    with engine.begin() as conn:
        conn.execute(campaigns.update().values(state="scheduled"))
    for action in (control.pause, control.resume):
        with pytest.raises(CampaignStateError, match="is scheduled"):
            action(runtime, SPEC.id)
    assert control.cancel(runtime, SPEC.id) == 20  # a scheduled campaign may be called off
    for action in (control.pause, control.resume):
        with pytest.raises(CampaignStateError, match="is cancelled"):
            action(runtime, SPEC.id)
    with pytest.raises(CampaignStateError, match="already cancelled"):
        control.cancel(runtime, SPEC.id)


def test_a_claim_given_back_after_a_cancel_ends_cancelled(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)  # the campaign's one batch in flight …
    assert cancel_campaign(engine, SPEC.id) == 0  # … when the operator cancels
    assert release(engine, [m.id for m in claimed], code="provider_down", refund=True) == 20
    counts = status_counts(engine, SPEC.id)
    assert counts[Status.CANCELLED] == 20 and counts[Status.QUEUED] == 0
    with engine.connect() as conn:
        codes = set(conn.scalars(sa.select(messages.c.error_code)))
    assert codes == {"campaign_cancelled"}


def test_the_reaper_giving_back_to_a_cancelled_campaign_ends_it_cancelled(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    claimed = claim_batch(engine, SPEC.id, 1)
    cancel_campaign(engine, SPEC.id)
    assert record_outcome(engine, claimed[0].id, Status.QUEUED, "reaper", "lease_expired")
    assert status_counts(engine, SPEC.id)[Status.QUEUED] == 0


def test_the_finaliser_cancels_what_still_waits_in_a_cancelled_campaign(engine, tmp_path):
    from ledger.finaliser import finalise

    runtime_with_campaign(engine, tmp_path)
    with engine.begin() as conn:  # a campaign cancelled by an older version, rows left
        conn.execute(campaigns.update().values(state="cancelled"))
    assert finalise(engine)["cancelled"] == 20
    assert status_counts(engine, SPEC.id)[Status.CANCELLED] == 20


@pytest.mark.postgres
def test_a_release_racing_a_cancel_waits_for_it_and_ends_cancelled(postgres_url, tmp_path):
    """The cancel holds the campaign's row; a release meanwhile waits for it instead of
    putting its rows back to ``queued`` behind the cancel's sweep."""
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    try:
        runtime_with_campaign(engine, tmp_path)
        claimed = claim_batch(engine, SPEC.id, 1)
        cancel = engine.connect()
        transaction = cancel.begin()
        cancel.execute(campaigns.update().values(state="cancelled"))  # the cancel's first step
        released: list[int] = []
        thread = threading.Thread(
            target=lambda: released.append(release(engine, [m.id for m in claimed]))
        )
        thread.start()
        _wait_for_a_lock_wait(engine)  # the release is blocked on the campaign's row
        cancel.execute(
            messages.update()
            .where(messages.c.status == Status.QUEUED.value)
            .values(status=Status.CANCELLED.value)
        )
        transaction.commit()
        cancel.close()
        thread.join(timeout=30)
        assert released == [20]
        assert status_counts(engine, SPEC.id)[Status.QUEUED] == 0
    finally:
        engine.dispose()


def _wait_for_a_lock_wait(engine, timeout: float = 300) -> None:
    """Until some session of this database waits for a row lock (polled: the condition
    itself, not a guess at how long it takes; ``timeout`` only bounds a hang)."""
    import time

    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.scalar(query):
                return
        time.sleep(0.05)  # polling another session's state; the query decides
    raise AssertionError("the release never waited for the cancel")


def test_a_sent_message_does_not_keep_an_earlier_attempts_code(engine, tmp_path):
    runtime_with_campaign(engine, tmp_path)
    first = claim_batch(engine, SPEC.id, 1)
    release(engine, [m.id for m in first], code="provider_down", refund=True)
    again = claim_batch(engine, SPEC.id, 1)
    record_sent(engine, SPEC.id, [(m.id, f"p{m.id}") for m in again])
    record_outcome(engine, again[0].id, Status.DELIVERED, "receipt")
    with engine.connect() as conn:
        codes = dict(
            conn.execute(
                sa.select(messages.c.status, messages.c.error_code).where(
                    messages.c.id.in_([m.id for m in again])
                )
            ).all()
        )
    assert codes == {"sent": None, "delivered": None}
