"""What a campaign waits for, and the time it has left (``ledger.waiting``): the decision
at fixed moments, and the facts it needs read from a real ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from campaigns.hours import VIETNAM, SendingWindow
from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from campaigns.status import Status
from ledger.messages import set_campaign_state
from ledger.schema import messages, now
from ledger.summary import CampaignRecord, load_campaign
from ledger.waiting import Progress, ProviderView, decide, estimate, facts, remaining
from tests.helpers import record

SPEC = load_spec(Path(__file__).resolve().parents[2] / "examples" / "bluezone.toml")
DAY = SendingWindow.parse("07:00-21:00")


def vn(hour: int, minute: int = 0, second: int = 0, day: int = 28) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=VIETNAM)


def campaign(
    state: str = "running", hours: SendingWindow | None = DAY, valid_until: datetime | None = None
) -> CampaignRecord:
    spec = SPEC.model_copy(update={"sending_hours": hours})
    return CampaignRecord(
        id=spec.id,
        name=spec.name,
        provider="sandbox",
        state=state,
        state_reason="paused by an operator" if state == "paused" else None,
        batches=1,
        created_at=vn(6),
        valid_until=valid_until or vn(18, day=29),
        spec=spec,
        intake={},
        list_columns=[],
    )


def counts(queued: int = 0, sending: int = 0, sent: int = 0, delivered: int = 0):
    found = dict.fromkeys(Status, 0)
    found.update({Status.QUEUED: queued, Status.SENDING: sending, Status.SENT: sent})
    found[Status.DELIVERED] = delivered
    return found


def test_outside_its_hours_it_waits_for_the_next_opening_and_gives_no_time_left():
    providers = {"sandbox": ProviderView("sandbox", queued=10, parts=30, rate=5.0)}
    at = vn(22, 30)
    waiting = decide(campaign(), counts(queued=10), providers, at, Progress())
    assert waiting is not None and waiting.reason == "sending_hours"
    assert waiting.until == vn(7, day=29) and waiting.messages == 10
    assert waiting.as_dict()["until"] == "2026-11-29T07:00:00+07:00"  # Vietnam's, with zone
    left = estimate(campaign(), providers, waiting, at, 0.0)
    assert left.seconds is None and left.resumes_at == vn(7, day=29)


def test_a_validity_ending_before_the_opening_is_what_it_waits_for():
    ends = vn(6, day=29)
    waiting = decide(
        campaign(valid_until=ends),
        counts(queued=3),
        {"sandbox": ProviderView("sandbox", queued=3)},
        vn(22, 30),
        Progress(),
    )
    assert waiting is not None and waiting.until == ends and "expire" in (waiting.why or "")


def test_past_its_validity_the_queued_wait_for_the_finaliser():
    waiting = decide(
        campaign(valid_until=vn(12)),
        counts(queued=4, sent=1),
        {"sandbox": ProviderView("sandbox", queued=4)},
        vn(13),
        Progress(),
    )
    assert waiting is not None and waiting.reason == "validity" and waiting.since == vn(12)
    assert "loa finalise" in (waiting.lifted_by or "")


def test_paused_says_since_when_and_how_to_go_on_with_no_estimate():
    paused = campaign("paused")
    providers = {"sandbox": ProviderView("sandbox", queued=5, rate=5.0)}
    waiting = decide(paused, counts(queued=5), providers, vn(10), Progress(state_since=vn(9)))
    assert waiting is not None and (waiting.reason, waiting.since) == ("paused", vn(9))
    assert waiting.lifted_by == f"loa campaign resume {paused.id}"
    left = estimate(paused, providers, waiting, vn(10), 2.0)
    assert left.seconds is None and left.resumes_at is None


def test_scheduled_waits_for_its_start():
    start = vn(7, 30, day=29)
    waiting = decide(campaign("scheduled"), counts(queued=5), {}, vn(10), Progress(start_at=start))
    assert waiting is not None and (waiting.reason, waiting.until) == ("scheduled", start)


def test_a_halt_holds_the_campaign_only_when_no_other_provider_sends():
    since = vn(9, 15)
    halted = ProviderView("gw", queued=5, halted=("http_401 credentials refused", since))
    other = ProviderView("intl", queued=2, rate=1.0)
    both = {"gw": halted, "intl": other}
    assert decide(campaign(), counts(queued=7), both, vn(10), Progress()) is None
    # While one provider is halted no estimate can say when everything is done.
    assert estimate(campaign(), both, None, vn(10), 0.0).seconds is None
    alone = {"gw": halted, "intl": replace(other, queued=0)}
    waiting = decide(campaign(), counts(queued=5), alone, vn(10), Progress())
    assert waiting is not None and waiting.reason == "provider_halted"
    assert (waiting.providers, waiting.since) == (("gw",), since)
    assert waiting.why == "gw: http_401 credentials refused"
    assert waiting.lifted_by == "loa provider resume gw"


def test_a_cooldown_holds_until_it_ends_and_the_estimate_starts_after_it():
    cooling = {"sandbox": ProviderView("sandbox", queued=10, cooldown_seconds=30.0, rate=1.0)}
    waiting = decide(campaign(), counts(queued=10), cooling, vn(10), Progress())
    assert waiting is not None and waiting.reason == "cooldown"
    assert waiting.until == vn(10, 0, 30) and waiting.providers == ("sandbox",)
    left = estimate(campaign(), cooling, waiting, vn(10), 0.0)
    assert left.seconds == 40 and left.finishes_at == vn(10, 0, 40)
    # A cooldown this process cannot see (embedded, another process sends) holds nothing.
    unseen = {"sandbox": replace(cooling["sandbox"], cooldown_seconds=None)}
    assert decide(campaign(), counts(queued=10), unseen, vn(10), Progress()) is None


def test_nothing_left_to_send_waits_for_receipts_until_the_window_ends():
    sent_at = vn(9)
    providers = {"sandbox": ProviderView("sandbox", receipt_window=timedelta(hours=72))}
    progress = Progress(last_sent={"sandbox": sent_at})
    waiting = decide(campaign(), counts(sent=3, delivered=7), providers, vn(10), progress)
    assert waiting is not None and waiting.reason == "receipts"
    assert waiting.until == sent_at + timedelta(hours=72) and waiting.messages == 3
    assert estimate(campaign(), providers, waiting, vn(10), 0.0).seconds == 0
    assert decide(campaign(), counts(delivered=10), providers, vn(10), progress) is None


def test_the_estimate_goes_at_the_agreed_rate_and_only_inside_the_hours():
    providers = {"sandbox": ProviderView("sandbox", queued=100, parts=300, rate=10.0)}
    at = vn(20, 59, 55)  # five seconds before the hours close
    assert decide(campaign(), counts(queued=100), providers, at, Progress()) is None
    left = estimate(campaign(), providers, None, at, 0.0)
    assert left.finishes_at == vn(7, 0, 5, day=29)  # 5 s tonight, 5 s at the next opening
    assert left.seconds == round((vn(7, 0, 5, day=29) - at).total_seconds())
    # A rate in parts counts parts.
    parts = {"sandbox": replace(providers["sandbox"], rate_unit="parts")}
    assert estimate(campaign(hours=None), parts, None, at, 0.0).seconds == 30
    # Past the validity: said, so that nobody is surprised by expired messages.
    short = campaign(valid_until=vn(23))
    assert estimate(short, providers, None, at, 0.0).after_validity


def test_without_an_agreed_rate_the_measured_one_is_used_or_none():
    free = {"sandbox": ProviderView("sandbox", queued=50)}
    assert estimate(campaign(hours=None), free, None, vn(10), 5.0).seconds == 10
    assert estimate(campaign(hours=None), free, None, vn(10), 0.0).seconds is None


def test_facts_and_what_is_left_come_from_the_ledger(engine):
    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(6)]
    record(engine, SPEC, rows)
    sent_at = now() - timedelta(minutes=5)
    with engine.begin() as conn:
        ids = list(conn.scalars(sa.select(messages.c.id).order_by(messages.c.id)))
        conn.execute(
            messages.update()
            .where(messages.c.id.in_(ids[:2]))
            .values(status=Status.SENT.value, sent_at=sent_at)
        )
        conn.execute(
            messages.update().where(messages.c.id == ids[2]).values(status=Status.SENDING.value)
        )
    before = now()
    set_campaign_state(engine, SPEC.id, "paused", "paused by an operator", source="operator")

    found = facts(engine, SPEC.id, "paused")
    assert found.state_since is not None and found.state_since >= before - timedelta(seconds=1)
    assert found.start_at is None
    assert abs((found.last_sent["sandbox"] - sent_at).total_seconds()) < 1
    queued, sending, parts = remaining(engine, SPEC.id)["sandbox"]
    per_message = parts // (queued + sending)
    assert (queued, sending) == (3, 1) and per_message >= 1 and parts == 4 * per_message
    stored = load_campaign(engine, SPEC.id)
    assert stored.state == "paused" and stored.valid_until > datetime.now(UTC)


def test_a_campaign_waiting_only_for_receipts_is_running_whatever_else_is_halted():
    """`loa campaign list` passes every halted provider: a campaign with nothing queued
    (only receipts to come) is running, not halted because some other provider is."""
    from ledger.summary import progress_state

    halts = {"gateway": "no balance"}
    assert progress_state("running", False, halts, frozenset()) == "running"
    assert progress_state("running", False, halts, frozenset({"gateway"})) == "halted"
    assert progress_state("running", False, halts, frozenset({"gateway", "intl"})) == "running"
    assert progress_state("running", True, halts, frozenset()) == "completed"


def test_a_cancel_landing_while_the_summary_is_read_shows_cancelled(engine, monkeypatch):
    """The summary counts the messages, then reads the state: a cancel committing between
    the two reads must not show every message cancelled under ``running`` (``completed``),
    a state the campaign never had (a watch stopped on it)."""
    import ledger.summary as summary
    import ledger.tally
    from ledger.messages import cancel_campaign

    rows = [ListRow(row=i + 2, phone=f"09123{i:05d}", values=()) for i in range(3)]
    record(engine, SPEC, rows)
    counted = ledger.tally.tally

    def counts_then_a_cancel_commits(engine_, campaign_id):
        cancel_campaign(engine_, campaign_id)  # lands just before the counting
        return counted(engine_, campaign_id)

    monkeypatch.setattr(ledger.tally, "tally", counts_then_a_cancel_commits)
    found = summary.summarise(engine, SPEC.id)
    assert found.done and found.progress_state == "cancelled"
