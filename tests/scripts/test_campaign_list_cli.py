"""``loa campaign list`` on both ledgers: newest first, the state status shows, counts and
share, the filters (state, Vietnam's days, limit) and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from campaigns.recipients import ListRow
from ledger.halts import halt
from ledger.messages import cancel_campaign, set_campaign_state
from ledger.schema import campaigns, key_of, messages
from tests.helpers import record
from tests.ledger.test_ledger import SPEC
from tests.scripts.test_cli import loa, loa_in_one_process


def _campaign(engine, campaign_id: str, created: datetime, count: int) -> None:
    """A campaign of ``count`` recipients (all queued), created at ``created``."""
    spec = SPEC.model_copy(update={"id": campaign_id, "name": f"Chiến dịch {campaign_id}"})
    rows = [ListRow(row=i + 2, phone=f"0912{i:06d}", values=()) for i in range(count)]
    record(engine, spec, rows, batch_size=500)
    with engine.begin() as conn:
        conn.execute(
            campaigns.update().where(campaigns.c.id == campaign_id).values(created_at=created)
        )


def _set(engine, campaign_id: str, status: str, count: int) -> None:
    """``count`` of the campaign's queued messages end in ``status``."""
    with engine.begin() as conn:
        ids = conn.scalars(
            sa.select(messages.c.id)
            .where(messages.c.campaign_key == key_of(campaign_id), messages.c.status == "queued")
            .order_by(messages.c.id)
            .limit(count)
        ).all()
        conn.execute(
            messages.update()
            .where(messages.c.id.in_(ids))
            .values(status=status, final_at=datetime.now(UTC))
        )


@pytest.fixture
def ledger(engine, ledger_url):
    """Six campaigns, one in each state ``loa campaign status`` shows; the environment
    that points ``loa`` at their ledger."""
    utc = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    # Completed: every recipient final; 1.000 of 1.200 delivered.
    _campaign(engine, "a-done", utc(2026, 1, 10, 3, 0), 1200)
    _set(engine, "a-done", "delivered", 1000)
    _set(engine, "a-done", "undelivered", 150)
    _set(engine, "a-done", "failed", 50)
    # 00:30 on 12/01 in Vietnam (still the 11th in UTC), paused.
    _campaign(engine, "b-paused", utc(2026, 1, 11, 17, 30), 3)
    set_campaign_state(engine, "b-paused", "paused", "operator", source="operator")
    # 00:30 on 13/01 in Vietnam (the 12th in UTC), running: one delivered, two queued.
    _campaign(engine, "c-running", utc(2026, 1, 12, 17, 30), 3)
    _set(engine, "c-running", "delivered", 1)
    _campaign(engine, "d-cancelled", utc(2026, 1, 14, 1, 0), 2)
    cancel_campaign(engine, "d-cancelled")
    _campaign(engine, "e-scheduled", utc(2026, 1, 15, 1, 0), 2)
    with engine.begin() as conn:
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == "e-scheduled")
            .values(state="scheduled", start_at=utc(2026, 1, 20, 0, 30))
        )
    # Running, but every queued message waits for a halted provider: halted.
    _campaign(engine, "f-halted", utc(2026, 1, 16, 1, 0), 2)
    with engine.begin() as conn:
        conn.execute(
            messages.update()
            .where(messages.c.campaign_key == key_of("f-halted"))
            .values(provider="gateway")
        )
    halt(engine, "gateway", "no balance")
    return {"LOA_DATABASE_URL": ledger_url}


NEWEST_FIRST = ["f-halted", "e-scheduled", "d-cancelled", "c-running", "b-paused", "a-done"]


def listed(tmp_path, env, *filters: tuple[str, ...]) -> list[dict]:
    """``loa campaign list FILTERS --json`` for each of ``filters``, in one process."""
    commands = [("campaign", "list", *args, "--json") for args in filters]
    results = loa_in_one_process(*commands, cwd=tmp_path, env=env)
    for result in results:
        assert result.returncode == 0, result.stderr
    return [json.loads(result.stdout) for result in results]


def test_every_campaign_newest_first_in_the_state_status_shows(tmp_path, ledger):
    (found,) = listed(tmp_path, ledger, ())
    assert [c["campaign"] for c in found["campaigns"]] == NEWEST_FIRST
    assert found["more"] is False and found["count"] == 6
    states = {c["campaign"]: c["state"] for c in found["campaigns"]}
    assert states == {
        "a-done": "completed", "b-paused": "paused", "c-running": "running",
        "d-cancelled": "cancelled", "e-scheduled": "scheduled", "f-halted": "halted",
    }  # fmt: skip
    asked = [("campaign", "status", campaign_id, "--json") for campaign_id in states]
    said = loa_in_one_process(*asked, cwd=tmp_path, env=ledger)
    for (campaign_id, state), status in zip(states.items(), said, strict=True):
        assert json.loads(status.stdout)["state"] == state, campaign_id  # what status says
    done = found["campaigns"][-1]
    assert (done["recipients"], done["delivered"], done["share"]) == (1200, 1000, 0.8333)
    assert done["created_at_vn"] == "2026-01-10T10:00:00+07:00"
    assert found["campaigns"][0]["state_reason"] == "provider gateway halted: no balance"
    assert found["campaigns"][1]["start_at"] == "2026-01-20T00:30:00+00:00"

    table = loa("campaign", "list", cwd=tmp_path, env={**ledger, "COLUMNS": "160"})
    assert table.returncode == 0, table.stderr
    text = table.stdout
    for shown in ("1.200", "1.000", "83,3 %", "33,3 %", "hoàn tất", "tạm dừng", "bị dừng",
                  "đã huỷ", "hẹn giờ", "đang chạy", "10:00 10/01/2026", "00:30 12/01/2026"):  # fmt: skip
        assert shown in text, shown
    assert text.index("f-halted") < text.index("c-running") < text.index("a-done")
    narrow = loa("campaign", "list", cwd=tmp_path, env={**ledger, "COLUMNS": "80"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "83,3 %" in narrow


def test_filters_by_state_by_vietnam_day_and_limit(tmp_path, ledger):
    filters = [
        ("--state", "running"),
        ("--state", "completed", "--state", "paused"),
        ("--since", "2026-01-12", "--until", "2026-01-12"),
        ("--since", "2026-01-13", "--until", "2026-01-14"),
        ("--until", "2026-01-11"),
        ("--since", "2026-01-15", "--state", "halted"),
        ("--limit", "2"),
        ("--limit", "0"),
        ("--since", "2026-02-01"),
    ]
    found = dict(zip(filters, listed(tmp_path, ledger, *filters), strict=True))

    def ids(*args: str) -> list[str]:
        return [c["campaign"] for c in found[args]["campaigns"]]

    # Stored `running` for all three, told apart by their counts and halts.
    assert ids("--state", "running") == ["c-running"]
    assert ids("--state", "completed", "--state", "paused") == ["b-paused", "a-done"]
    # Vietnam's days: b-paused was created at 00:30 on the 12th there (the 11th in UTC),
    # c-running at 00:30 on the 13th (the 12th in UTC).
    assert ids("--since", "2026-01-12", "--until", "2026-01-12") == ["b-paused"]
    assert ids("--since", "2026-01-13", "--until", "2026-01-14") == ["d-cancelled", "c-running"]
    assert ids("--until", "2026-01-11") == ["a-done"]
    assert ids("--since", "2026-01-15", "--state", "halted") == ["f-halted"]
    limited = found["--limit", "2"]
    assert [c["campaign"] for c in limited["campaigns"]] == NEWEST_FIRST[:2]
    assert limited["more"] is True
    assert ids("--limit", "0") == NEWEST_FIRST
    assert found["--since", "2026-02-01"]["campaigns"] == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--since", "2026-13-01"), "--since"),
        (("--until", "12/01/2026"), "--until"),
        (("--since", "20260112"), "--since"),
        (("--since", "2026-01-12", "--until", "2026-01-11"), "--since 2026-01-12 is after"),
        (("--state", "finished"), "--state"),
    ],
)
def test_bad_filters_exit_2_naming_the_option(tmp_path, args, named):
    result = loa("campaign", "list", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_an_empty_ledger_lists_nothing(tmp_path):
    result = loa("campaign", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no campaigns" in result.stdout
    assert json.loads(loa("campaign", "list", "--json", cwd=tmp_path).stdout) == {
        "campaigns": [],
        "count": 0,
        "more": False,
    }


def test_pages_are_read_until_enough_matched_and_ties_are_not_lost(engine, ledger, monkeypatch):
    from ledger import listing

    monkeypatch.setattr(listing, "PAGE", 2)  # six campaigns: three pages and more
    # Created at the same moment as a-done: the later key first, on either side of a page.
    _campaign(engine, "a-twin", datetime(2026, 1, 10, 3, 0, tzinfo=UTC), 1)
    _set(engine, "a-twin", "delivered", 1)
    lines, more = listing.list_campaigns(engine)
    assert [line.id for line in lines] == [*NEWEST_FIRST[:-1], "a-twin", "a-done"]
    assert more is False
    lines, more = listing.list_campaigns(engine, states=["completed", "paused"])
    assert [line.id for line in lines] == ["b-paused", "a-twin", "a-done"]
    lines, more = listing.list_campaigns(engine, states=["running"], limit=1)
    assert ([line.id for line in lines], more) == (["c-running"], False)
    lines, more = listing.list_campaigns(engine, limit=5)
    assert ([line.id for line in lines], more) == (NEWEST_FIRST[:5], True)
    with pytest.raises(ValueError, match="unknown state 'finished'"):
        listing.list_campaigns(engine, states=["finished"])
