from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from campaigns.plan import Planner
from campaigns.recipients import ListRow
from campaigns.spec import load_spec
from ledger.intake import record_campaign
from ledger.schema import campaigns, messages, now
from ledger.suppressions import add_numbers, capped_numbers, counts, load, remove_number
from tests.helpers import chunked

AD = load_spec(Path(__file__).resolve().parents[2] / "examples" / "ad-sale.toml")


def test_lists_are_kept_apart_and_imports_skip_what_is_listed(engine):
    assert add_numbers(engine, "dnc", ["+84912345678", "+84912345679"], "dnc.csv") == 2
    assert add_numbers(engine, "dnc", ["+84912345678", "+84987654321"], "dnc2.csv") == 1
    assert add_numbers(engine, "opt_out", ["+84912345678"], "operator") == 1
    loaded = load(engine, ["dnc", "opt_out"])
    assert sorted(loaded["dnc"]) == ["+84912345678", "+84912345679", "+84987654321"]
    assert list(loaded["opt_out"]) == ["+84912345678"]
    assert remove_number(engine, "dnc", "+84912345679")
    assert not remove_number(engine, "dnc", "+84912345679")
    assert counts(engine) == {"opt_out": 1, "dnc": 2, "residents": 0}


def test_the_advertising_cap_counts_recent_campaigns_only(engine):
    def launch(campaign_id: str, age: timedelta) -> None:
        spec = AD.model_copy(update={"id": campaign_id})
        planner = Planner(spec, ["Họ và tên", "Huyện/Thành phố"])
        rows = [
            ListRow(2, "0912345678", ("An", "Ninh Hải")),
            ListRow(3, "0987654321", ("Bình", "Bác Ái")),
        ]
        if campaign_id.endswith("3"):
            rows = rows[:1]
        record_campaign(
            engine,
            spec,
            "l.csv",
            ["Họ và tên", "Huyện/Thành phố"],
            lambda: planner.summary,
            chunked(planner.plan(rows)),
            10,
        )
        with engine.begin() as conn:
            conn.execute(
                sa.update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(created_at=now() - age)
            )

    def settle(campaign_id: str, status: str, sent_ago: timedelta | None) -> None:
        sent_at = None if sent_ago is None else now() - sent_ago
        with engine.begin() as conn:
            key = conn.scalar(sa.select(campaigns.c.key).where(campaigns.c.id == campaign_id))
            conn.execute(
                sa.update(messages)
                .where(messages.c.campaign_key == key)
                .values(status=status, sent_at=sent_at)
            )

    launch("ad-1", timedelta(hours=30))
    settle("ad-1", "delivered", timedelta(hours=29))  # sent outside the window
    launch("ad-2", timedelta(hours=1))
    launch("ad-3", timedelta(hours=2))  # still queued: may go out, counts
    assert sorted(capped_numbers(engine, "advertising", cap=2)) == ["+84912345678"]
    assert len(capped_numbers(engine, "advertising", cap=3)) == 0

    # Launched yesterday evening, sent this morning: in the window by its sending.
    launch("ad-4", timedelta(hours=30))
    settle("ad-4", "delivered", timedelta(hours=3))
    assert sorted(capped_numbers(engine, "advertising", cap=3)) == ["+84912345678"]
    # Cancelled (a typo fixed by launching again), failed and expired never went out.
    for status in ("cancelled", "failed", "expired"):
        settle("ad-4", status, None)
        assert len(capped_numbers(engine, "advertising", cap=3)) == 0, status
    # Older than the window plus the longest validity: nothing of it can be recent.
    settle("ad-4", "queued", None)
    with engine.begin() as conn:
        conn.execute(
            sa.update(campaigns)
            .where(campaigns.c.id == "ad-4")
            .values(created_at=now() - timedelta(days=9))
        )
    assert len(capped_numbers(engine, "advertising", cap=3)) == 0
