"""``loa recipient history NUMBER``: one number's messages across campaigns, from real
launches, before and after retention, and what a bad number or an unknown one gets."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaigns.status import FINAL
from ledger.retention import pseudonym
from ledger.schema import campaigns, key_of, messages, now
from tests.scripts.test_cli import EXAMPLE, loa

KEY = "khoá-bí-mật-của-sở-tttt"
NUMBER = "+84912345678"
SECOND_ID = "bluezone-dot-2"


def launch_two(tmp_path, engine, env: dict[str, str]) -> None:
    """Two campaigns, each texting NUMBER (written differently in each list), the second
    launched after the first."""
    first = tmp_path / "first.csv"
    first.write_text("Họ tên,Số điện thoại\nAn,0912 345 678\nBình,0987654321\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("Họ tên,Số điện thoại\nAn,84912345678\nChi,0977000111\n", encoding="utf-8")
    spec = tmp_path / "second.toml"
    spec.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            'id = "bluezone-ninh-thuan-2020"', f'id = "{SECOND_ID}"'
        ),
        encoding="utf-8",
    )
    for campaign, listing in ((EXAMPLE, first), (spec, second)):
        done = loa("campaign", "launch", str(campaign), "-r", str(listing), cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    with engine.begin() as conn:  # the second one newer, whatever the clock's resolution
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == "bluezone-ninh-thuan-2020")
            .values(created_at=now() - timedelta(days=1))
        )


def history(tmp_path, env, number: str = "0912.345.678") -> dict:
    result = loa("recipient", "history", number, "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "912345678" not in result.stdout  # masked
    return json.loads(result.stdout)


def test_history_across_two_campaigns_with_each_message_s_events(tmp_path, engine, ledger_url):
    env = {"LOA_DATABASE_URL": ledger_url}
    launch_two(tmp_path, engine, env)
    found = history(tmp_path, env)
    assert found["number"] == "+8491*****78" and found["carrier"] == "vinaphone"
    assert found["count"] == 2 and found["complete"] is True
    assert [m["campaign"] for m in found["messages"]] == [SECOND_ID, "bluezone-ninh-thuan-2020"]
    with engine.connect() as conn:
        stored = {
            campaign_id: conn.execute(
                sa.select(messages.c.id, messages.c.status, messages.c.parts).where(
                    messages.c.campaign_key == key_of(campaign_id),
                    messages.c.recipient == NUMBER,
                )
            ).one()
            for campaign_id in (SECOND_ID, "bluezone-ninh-thuan-2020")
        }
    for message in found["messages"]:
        mid, status, parts = stored[message["campaign"]]
        assert (message["message_id"], message["status"], message["parts"]) == (mid, status, parts)
        assert message["status"] in FINAL and message["provider"] == "sandbox"
        assert message["matched_by"] == "number" and message["final_at"] is not None
        moves = [(e["source"], e["from"], e["to"]) for e in message["events"]]
        assert moves[0] == ("worker", "queued", "sending")  # the claim
        assert moves[-1][2] == message["status"]  # the last event is where it ended
    # The other recipients of those campaigns are not in it.
    assert all(m["message_id"] in {s[0] for s in stored.values()} for m in found["messages"])

    table = loa("recipient", "history", "+84 912 345 678", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "+8491*****78" in table.stdout and "912345678" not in table.stdout
    for shown in (SECOND_ID, "bluezone-ninh-thuan-2020", "Sự kiện", "queued → sending",
                  "sandbox", "2 tin nhắn"):  # fmt: skip
        assert shown in table.stdout, shown


def test_after_retention_the_number_is_found_by_its_hmac_and_only_with_the_key(
    tmp_path, engine, ledger_url
):
    env = {"LOA_DATABASE_URL": ledger_url, "LOA_RETENTION_KEY": KEY}
    launch_two(tmp_path, engine, env)
    with engine.begin() as conn:  # the first campaign's messages ended 100 days ago
        conn.execute(
            messages.update()
            .where(messages.c.campaign_key == key_of("bluezone-ninh-thuan-2020"))
            .values(final_at=now() - timedelta(days=100))
        )
    applied = loa("retention", "apply", "--json", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["numbers"] == 2
    with engine.connect() as conn:
        kept = conn.scalars(
            sa.select(messages.c.recipient).where(
                messages.c.campaign_key == key_of("bluezone-ninh-thuan-2020")
            )
        ).all()
    assert pseudonym(KEY, NUMBER) in kept and NUMBER not in kept

    found = history(tmp_path, env)
    assert found["searched_hmac"] is True and found["complete"] is True
    assert [(m["campaign"], m["matched_by"]) for m in found["messages"]] == [
        (SECOND_ID, "number"),
        ("bluezone-ninh-thuan-2020", "hmac"),
    ]
    assert found["messages"][1]["events"]  # its events are still there

    # Without the key the retained message cannot be found, and the command says so.
    without = {"LOA_DATABASE_URL": ledger_url}
    result = loa("recipient", "history", "0912345678", "--json", cwd=tmp_path, env=without)
    assert result.returncode == 0, result.stderr
    blind = json.loads(result.stdout)
    assert [m["campaign"] for m in blind["messages"]] == [SECOND_ID]
    assert blind["complete"] is False and blind["searched_hmac"] is False
    assert blind["unsearchable_campaigns"] == ["bluezone-ninh-thuan-2020"]
    assert "LOA_RETENTION_KEY" in result.stderr and "bluezone-ninh-thuan-2020" in result.stderr


def test_a_number_never_texted_has_no_messages_and_exits_0(tmp_path, engine, ledger_url):
    from campaigns.recipients import ListRow
    from tests.helpers import record
    from tests.ledger.test_ledger import SPEC

    env = {"LOA_DATABASE_URL": ledger_url}
    record(engine, SPEC, [ListRow(row=2, phone="0912345678", values=())])  # another number
    assert history(tmp_path, env, "0912345678")["count"] == 1
    found = history(tmp_path, env, "0912000000")
    assert (found["count"], found["messages"], found["complete"]) == (0, [], True)
    table = loa("recipient", "history", "0912000000", cwd=tmp_path, env=env)
    assert table.returncode == 0 and "no messages" in table.stdout
    assert "+8491*****00" in table.stdout and "912000000" not in table.stdout


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("abc", "not_a_number"),
        ("0241 234 567", "landline"),
        ("091234", "wrong_length"),
        ("0112345678", "unallocated_prefix"),
        ("  ", "empty"),
    ],
)
def test_a_bad_number_exits_2_saying_why(tmp_path, number, why):
    result = loa("recipient", "history", number, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "NUMBER" in result.stderr and why in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()  # refused before the ledger


def test_a_welcome_without_a_creation_time_points_to_its_events():
    """An arrivals welcome keeps no creation time of its own: its row says where the times
    are instead of a bare dash; a list's message shows its campaign's launch."""
    from rich.console import Console

    from ledger.history import HistoryMessage
    from scripts.recipient import _message_table

    def shown(created_at) -> str:
        message = HistoryMessage(
            1, "arrivals-ninh-thuan-2026-11", "Chào mừng", "delivered", "sandbox", 1, 1,
            None, "SM1", created_at, now(), now(), "number",
        )  # fmt: skip
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(_message_table(1, message))
        (line,) = [x for x in console.export_text().splitlines() if "created" in x]
        return line

    assert "a welcome: see its events" in shown(None)
    assert "see its events" not in shown(now()) and "/" in shown(now())
