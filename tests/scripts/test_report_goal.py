"""The goal section of ``loa report`` (issue #24), as the Department reads it: a row per
district (those behind the pace first, marked), the recipients outside the goal's
districts, totals that add up to the rows, and the chart; in HTML and in the workbook."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from openpyxl import load_workbook

from tests.scripts.test_cli import loa

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DISTRICTS = ["Ninh Hải", "Ninh Sơn", "Phan Rang–Tháp Chàm", "Đà Lạt"]


def launched(tmp_path: Path) -> None:
    for name in ("bluezone-goal.toml", "bluezone-population.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    spec = tmp_path / "bluezone.toml"
    spec.write_text('goal = "bluezone-goal.toml"\n' + (EXAMPLES / "bluezone.toml").read_text(
        "utf-8"), "utf-8")  # fmt: skip
    rows = "".join(f"09123{i:05d},{DISTRICTS[i % 4]}\n" for i in range(40))
    (tmp_path / "list.csv").write_text("phone,Huyện/Thành phố\n" + rows, "utf-8")
    planned = loa("campaign", "plan", str(spec), "-r", "list.csv", "--json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    goal = json.loads(planned.stdout)["goal"]  # what its report will measure it against
    assert (goal["name"], goal["areas"], goal["deadline"]) == ("Cài đặt Bluezone", 7, "2020-09-30")
    done = loa("campaign", "launch", str(spec), "-r", "list.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "counts.csv").write_text(
        "Huyện,Ngày,Số lượng\nNinh Hải,2020-09-01,300\nNinh Sơn,2020-09-01,900\n", "utf-8"
    )
    imported = loa("outcomes", "import", "counts.csv", "--goal", "bluezone-goal.toml",
                   cwd=tmp_path)  # fmt: skip
    assert imported.returncode == 0, imported.stderr


def test_the_goal_section_adds_up_in_html_and_in_the_workbook(tmp_path):
    launched(tmp_path)
    html = loa("report", "bluezone-ninh-thuan-2020", "--out", "r.html", "--json", cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    goal = json.loads(html.stdout)["goal"]
    assert goal["outcomes"] == 1200 and goal["elsewhere"] == 10
    assert sum(a["recipients"] for a in goal["areas"]) + goal["elsewhere"] == 40
    assert sum(a["outcomes"] for a in goal["areas"]) == goal["outcomes"]
    behind = [a["behind"] for a in goal["areas"]]
    assert behind == sorted(behind, reverse=True)  # those behind first
    page = (tmp_path / "r.html").read_text("utf-8")
    table = re.search(r'<table class="goal">.*?</table>', page, re.S).group(0)
    assert table.count("<tr") == 1 + 7 + 1 + 1  # the head, the districts, elsewhere, total
    assert "Ngoài các khu vực của mục tiêu" in table and "Ninh Sơn" in table
    assert "Tỷ lệ đạt theo ngày" in page and "<polyline" in page
    book = loa("report", "bluezone-ninh-thuan-2020", "--out", "r.xlsx", cwd=tmp_path)
    assert book.returncode == 0, book.stderr
    sheet = load_workbook(tmp_path / "r.xlsx", read_only=True)["Mục tiêu"]
    rows = [row for row in sheet.iter_rows(values_only=True) if row and row[0]]
    areas = rows[rows.index(next(r for r in rows if r[0] == "Khu vực")) + 1 : -1]
    total = rows[-1]
    cell = lambda row, i: (row[i] if len(row) > i else None) or 0  # noqa: E731 (trailing blanks)
    assert total[0] == "Tổng" and sum(cell(r, 4) for r in areas) == total[4] == 1200
    assert sum(cell(r, 2) for r in areas) == total[2] == 40  # elsewhere's ten included
    # Reached: every recipient reached, those outside the goal's districts too.
    assert sum(a["reached"] for a in goal["areas"]) + goal["elsewhere_reached"] == goal["reached"]
    assert sum(cell(r, 3) for r in areas) == total[3] == goal["reached"]
    opened = load_workbook(tmp_path / "r.xlsx")  # formats are read in full mode only
    sheet = opened["Mục tiêu"]
    assert sheet["B2"].number_format == "0.0%" and sheet["B2"].value == 0.5
    assert sheet["B3"].is_date and sheet["B3"].value.year == 2020
    days = [row for row in opened["Tỷ lệ đạt theo ngày"].iter_rows(values_only=True)]
    assert days[0][:2] == ("Ngày", "Kết quả") and days[1][1] == 1200


def test_the_daily_report_carries_each_goal_of_the_day_s_campaigns(tmp_path):
    launched(tmp_path)
    done = loa("report", "--daily", "today", "--out", "d.html", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (goal,) = json.loads(done.stdout)["goals"]
    assert goal["goal"] == "Cài đặt Bluezone" and goal["outcomes"] == 1200
    page = (tmp_path / "d.html").read_text("utf-8")
    assert '<table class="goal">' in page and "Tỷ lệ đạt theo ngày" in page
    assert "của chiến dịch đầu tiên phục vụ mục tiêu, bluezone-ninh-thuan-2020" in page


def test_the_daily_report_keeps_a_goal_after_its_sending_ends(tmp_path):
    """Outcomes keep arriving once the messages are out: a day without the campaign's
    activity still shows its goal until the deadline, in HTML and in the workbook."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from ledger.schema import campaigns

    launched(tmp_path)
    goal = (tmp_path / "bluezone-goal.toml").read_text("utf-8")
    (tmp_path / "bluezone-goal.toml").write_text(
        re.sub(r"deadline = .*", "deadline = 2099-12-31", goal), "utf-8")  # fmt: skip
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'loa.db'}")
    with engine.begin() as conn:  # launched three days ago; its deadline far ahead
        spec = conn.scalar(sa.select(campaigns.c.spec))
        spec["goal"]["deadline"] = "2099-12-31"
        conn.execute(campaigns.update().values(
            spec=spec, created_at=datetime.now(UTC) - timedelta(days=3)))  # fmt: skip
    done = loa("report", "--daily", "yesterday", "--out", "d.xlsx", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["campaigns"] == [] and [g["goal"] for g in found["goals"]] == ["Cài đặt Bluezone"]
    assert "Mục tiêu" in load_workbook(tmp_path / "d.xlsx", read_only=True).sheetnames


def test_the_readme_s_goal_walkthrough_runs_with_the_examples(tmp_path):
    """The README's commands, as written, on the examples: a campaign serving the goal,
    two days of counts and the numbers that installed, its report, a follow-up's plan."""
    import secrets

    env = {"LOA_RETENTION_KEY": secrets.token_hex(24)}
    run = lambda *args: loa(*args, cwd=tmp_path, env=env)  # noqa: E731
    ex = str(EXAMPLES)
    steps = [
        ("campaign", "launch", f"{ex}/bluezone-muc-tieu.toml", "-r",
         f"{ex}/ninh-thuan-residents.csv"),
        ("outcomes", "import", f"{ex}/cai-dat.csv", "--goal", f"{ex}/bluezone-goal.toml"),
        ("outcomes", "import", f"{ex}/da-cai.csv", "--goal", f"{ex}/bluezone-goal.toml",
         "--numbers"),
    ]  # fmt: skip
    for step in steps:
        done = run(*step)
        assert done.returncode == 0, (step, done.stderr)
    report = run("report", "bluezone-muc-tieu-2020", "--out", "bao-cao.html", "--json")
    goal = json.loads(report.stdout)["goal"]
    counts = (EXAMPLES / "cai-dat.csv").read_text("utf-8").splitlines()[1:]
    assert goal["outcomes"] == sum(int(line.split(",")[2]) for line in counts)
    assert goal["measured_by"] == "counts"
    installed = len((EXAMPLES / "da-cai.csv").read_text("utf-8").splitlines()) - 1
    assert sum(a["acted"] for a in goal["areas"]) == installed  # each one a recipient
    planned = run("campaign", "follow-up", "bluezone-muc-tieu-2020", "--to",
                  "undelivered,failed,not-acted", "--spec", f"{ex}/nhac-lai.toml", "--plan",
                  "--json")  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    chosen = json.loads(planned.stdout)
    assert chosen["chosen"] + chosen["left_out"] == goal["recipients"]
    assert chosen["plan"]["planned"] == chosen["chosen"] - chosen["plan"]["suppressed"]


def test_the_goal_s_table_as_csv_adds_up(tmp_path):
    import csv

    launched(tmp_path)
    for args in (("bluezone-ninh-thuan-2020",), ("--daily", "today")):
        done = loa("report", *args, "--goal", "-o", "g.csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rows = list(csv.reader((tmp_path / "g.csv").read_text("utf-8-sig").splitlines()))
        assert rows[0][:4] == ["Mục tiêu", "Khu vực", "Tỷ lệ", "Kết quả"]
        *areas, total = rows[1:]
        assert total[1] == "Tổng" and len(areas) == 7 + 1  # the districts, and elsewhere
        for column in (3, 5, 6):  # outcome, recipients, reached: the rows make the total
            assert sum(int(r[column] or 0) for r in areas) == int(total[column]), column
    refused = loa("report", "bluezone-ninh-thuan-2020", "--goal", "-o", "g.html", cwd=tmp_path)
    assert refused.returncode == 2 and "carries it already" in refused.stderr


def test_the_chart_s_pace_is_the_line_s_and_it_stops_at_the_deadline():
    """A goal launched after its deadline (the README's 2020 example run today): the line
    said the pace was the target, the chart's legend 0 %, over six years of days."""
    from scripts.reports.goal import series

    def goal(start: str, day: str, pace: float) -> dict:
        return {"start": start, "day": day, "deadline": "2020-09-30", "target": 0.5,
                "pace": pace, "by_day": [{"day": "2020-08-25", "share": 0.1}]}  # fmt: skip

    reached, pace, _, first, last = series(goal("2026-12-01", "2026-12-02", 0.5))
    # From the first outcome to the deadline, not six years of days; the pace the target.
    assert pace[-1] == 0.5 and (first.isoformat(), last.isoformat()) == ("2020-08-25",
                                                                         "2020-09-30")  # fmt: skip
    reached, pace, _, first, last = series(goal("2020-08-20", "2020-09-15", 0.2))
    assert last.isoformat() == "2020-09-15" and round(pace[-1], 4) == round(0.5 * 26 / 41, 4)
    assert reached[-1] == 0.1
