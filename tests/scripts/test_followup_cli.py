"""``loa campaign follow-up`` (issue #24): a new campaign, linked to the first, to those
it did not reach, by why (or who have not acted); planned first, then launched, every
rule of a campaign applying (a number suppressed since is left out); refused naming
what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from ledger.schema import campaigns, key_of, messages
from tests.scripts.test_cli import loa

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STATUSES = ["delivered", "undelivered", "failed", "unknown", "delivered", "undelivered"]


def first_campaign(tmp_path: Path) -> sa.Engine:
    rows = "".join(f"09123{i:05d},Phan Rang\n" for i in range(len(STATUSES)))
    (tmp_path / "list.csv").write_text("phone,Huyện/Thành phố\n" + rows, "utf-8")
    done = loa("campaign", "launch", str(EXAMPLES / "bluezone.toml"), "-r", "list.csv",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    with engine.begin() as conn:  # as the carriers answered
        ids = conn.scalars(sa.select(messages.c.id).order_by(messages.c.recipient)).all()
        for message_id, status in zip(ids, STATUSES, strict=True):
            conn.execute(messages.update().where(messages.c.id == message_id)
                         .values(status=status))  # fmt: skip
    spec = (EXAMPLES / "bluezone.toml").read_text("utf-8")
    spec = spec.replace('id = "bluezone-ninh-thuan-2020"', 'id = "nhac-lai-bluezone"')
    spec = spec.replace("Sở TT&TT Ninh Thuận:", "Nhắc lại {district}:", 1)
    (tmp_path / "nhac-lai.toml").write_text(spec, "utf-8")
    return engine


def test_a_follow_up_texts_those_not_reached_by_why_and_is_linked(tmp_path):
    engine = first_campaign(tmp_path)
    planned = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", "--to",
                  "undelivered,failed", "--spec", "nhac-lai.toml", "--plan", "--json",
                  cwd=tmp_path)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    found = json.loads(planned.stdout)
    assert found["by_reason"] == {"undelivered": 2, "failed": 1} and found["chosen"] == 3
    assert found["plan"]["planned"] == 3
    with engine.connect() as conn:  # a dry run: nothing recorded
        assert conn.scalar(sa.select(sa.func.count()).select_from(campaigns)) == 1
    for_people = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", "--to",
                     "undelivered,failed", "--spec", "nhac-lai.toml", "--plan", cwd=tmp_path)  # fmt: skip
    assert for_people.returncode == 0, for_people.stderr
    said = for_people.stdout
    assert "không đến máy · undelivered" in said and "Kế hoạch nhac-lai-bluezone" in said
    assert "tổng · total" in said and said.count("\n") > 10  # tables, not a line
    suppressed = loa("suppress", "add", "0912300001", "--list", "opt_out", cwd=tmp_path)
    assert suppressed.returncode == 0, suppressed.stderr
    launched = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", "--to",
                   "undelivered,failed", "--spec", "nhac-lai.toml", "--json",
                   cwd=tmp_path)  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["launched"] is True
    with engine.connect() as conn:
        texted = conn.scalars(
            sa.select(messages.c.recipient).where(
                messages.c.campaign_key == key_of("nhac-lai-bluezone"))
        ).all()  # fmt: skip
        intake = conn.scalar(sa.select(campaigns.c.intake).where(
            campaigns.c.id == "nhac-lai-bluezone"))  # fmt: skip
    # Undelivered 1 (suppressed since: left out) and 5, failed 2.
    assert sorted(texted) == ["+84912300002", "+84912300005"]
    assert intake["follows"] == {"campaign": "bluezone-ninh-thuan-2020",
                                 "by_reason": {"undelivered": 2, "failed": 1}}  # fmt: skip
    assert intake["suppressed"] == 1
    # The first campaign's report lists its follow-up and what both reached together.
    report = loa("report", "bluezone-ninh-thuan-2020", "--out", "r.html", "--json",
                 cwd=tmp_path)  # fmt: skip
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)["follow_ups"]
    # The sandbox delivered both; the first had reached two of its six.
    assert found["follow_ups"] == [{"campaign": "nhac-lai-bluezone", "recipients": 2,
                                    "reached": 2, "follows": "bluezone-ninh-thuan-2020"}]  # fmt: skip
    assert (found["recipients"], found["reached_together"]) == (6, 4)
    assert "Chiến dịch nhắc lại" in (tmp_path / "r.html").read_text("utf-8")
    # Asked again once another recipient failed: another list for the same follow-up id,
    # refused (exit 2, saying so), nothing added, as a relaunch with another list is.
    with engine.begin() as conn:
        conn.execute(messages.update().where(messages.c.recipient == "+84912300000")
                     .values(status="failed"))  # fmt: skip
    again = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", "--to",
                "undelivered,failed", "--spec", "nhac-lai.toml", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and "already launched with another list" in again.stderr


def test_a_follow_up_asked_wrongly_is_refused_naming_it(tmp_path):
    first_campaign(tmp_path)
    shutil.copy(EXAMPLES / "bluezone.toml", tmp_path / "same.toml")
    cases = [
        (("--to", "lost", "--spec", "nhac-lai.toml"), "'lost' is no reason"),
        (("--to", "failed", "--spec", "same.toml"), "is the first campaign's"),
        (("--to", "not-acted", "--spec", "nhac-lai.toml"), "serves no goal"),
    ]
    for args, said in cases:
        done = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", *args, cwd=tmp_path)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    with engine.begin() as conn:  # one still awaiting its receipt: the first is not over
        conn.execute(messages.update().where(messages.c.recipient == "+84912300000")
                     .values(status="sent"))  # fmt: skip
    early = loa("campaign", "follow-up", "bluezone-ninh-thuan-2020", "--to", "unknown",
                "--spec", "nhac-lai.toml", "--plan", cwd=tmp_path)  # fmt: skip
    assert early.returncode == 2 and "is not over: 1 of its messages" in early.stderr
    unknown = loa("campaign", "follow-up", "khong-co", "--to", "failed", "--spec",
                  "nhac-lai.toml", cwd=tmp_path)  # fmt: skip
    assert unknown.returncode == 2 and "khong-co" in unknown.stderr
