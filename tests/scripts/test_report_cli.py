"""``loa report`` as an auditor runs it: files that open, labels in Vietnamese, numbers
masked, and bad requests named with exit code 2."""

from __future__ import annotations

import csv
import json

from openpyxl import load_workbook

from tests.scripts.test_cli import EXAMPLE, loa


def launched(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text(
        "Họ tên,Số điện thoại,Huyện\nAn,0912345678,Ninh Hải\nBình,0987 654 321,Bác Ái\n"
        "Chi,0971234567,Ninh Hải\nDũng,chưa có,Bác Ái\n",
        encoding="utf-8",
    )
    result = loa("campaign", "launch", str(EXAMPLE), "-r", str(listing), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return "bluezone-ninh-thuan-2020"


def test_xlsx_and_csv_reports(tmp_path):
    campaign = launched(tmp_path)
    made = loa("report", campaign, "--out", str(tmp_path / "báo cáo.xlsx"), "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    figures = json.loads(made.stdout)
    assert figures["rows_read"] == 4 and figures["rejected"] == 1 and figures["recipients"] == 3
    assert figures["final"] == 3 and figures["by"] == "Huyện"
    book = load_workbook(tmp_path / "báo cáo.xlsx", read_only=True)
    assert book.sheetnames == [
        "Tổng hợp", "Theo Huyện", "Theo nhà mạng", "Theo nhà cung cấp", "Theo giờ gửi", "Tiến độ", "Lỗi",
        "Người nhận",
    ]  # fmt: skip
    summary = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(values_only=True)}
    assert summary["Người nhận"] == 3
    by_district = list(book["Theo Huyện"].iter_rows(values_only=True))
    assert sum(row[-1] for row in by_district[1:]) == 3  # the totals add up on the page
    numbers = [row[1] for row in book["Người nhận"].iter_rows(min_row=2, values_only=True)]
    assert numbers and all("*" in n for n in numbers)  # masked

    english = loa("report", campaign, "-o", str(tmp_path / "r.xlsx"), "--lang", "en", cwd=tmp_path)
    assert english.returncode == 0
    assert load_workbook(tmp_path / "r.xlsx", read_only=True).sheetnames[0] == "Summary"

    page = loa("report", campaign, "-o", str(tmp_path / "r.html"), "-f", "html", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    assert "Chưa kiểm tra toàn bộ chuỗi băm" in (tmp_path / "r.html").read_text(encoding="utf-8")
    page = loa("report", campaign, "-o", str(tmp_path / "r.html"), "-f", "html", "--verify",
               cwd=tmp_path)  # fmt: skip
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in html and "src=" not in html and "<link" not in html  # self-contained
    assert 'lang="vi"' in html and "Theo Huyện" in html and 'class="rates"' in html
    assert 'class="timeline"' in html and "Tiến độ gửi tin và đến máy" in html
    assert "— không phải số" in html  # the rejected row, by its reason
    assert "Chuỗi băm toàn vẹn" in html and "Kiểm tra toàn bộ lúc" in html  # verified now
    assert "0912345678" not in html and "+84912345678" not in html

    flat = loa("report", campaign, "-o", str(tmp_path / "r.csv"), "-f", "csv", cwd=tmp_path)
    assert flat.returncode == 0
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all("*" in row["number"] for row in rows)


def test_bad_requests_are_named_with_exit_2(tmp_path):
    campaign = launched(tmp_path)
    cases = {
        ("report", "nope", "-o", str(tmp_path / "r.xlsx")): "no campaign 'nope'",
        ("report", campaign, "-o", str(tmp_path / "missing" / "r.xlsx")): "cannot write there",
        ("report", campaign, "-o", str(tmp_path / "r.xlsx"), "--by", "ward"): "no such column",
    }
    for args, needle in cases.items():
        result = loa(*args, cwd=tmp_path)
        assert result.returncode == 2 and needle in result.stderr, (args, result.stderr)
    assert not (tmp_path / "r.xlsx").exists()  # nothing half-written


def test_the_daily_update(tmp_path):
    campaign = launched(tmp_path)
    made = loa("report", "--daily", "today", "-f", "html", "-o", str(tmp_path / "d.html"),
               "--json", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    daily = json.loads(made.stdout)
    (active,) = daily["campaigns"]
    assert active["campaign"] == campaign and active["recipients"] == 3
    assert (
        sum(
            active["that_day"].get(s, 0)
            for s in ("delivered", "undelivered", "failed", "unknown", "expired")
        )
        == 3
    )  # fmt: skip - every recipient ended today
    html = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "Báo cáo ngày" in html and 'class="timeline"' in html and "<script" not in html

    flat = loa("report", "--daily", daily["day"], "-f", "csv", "-o", str(tmp_path / "d.csv"),
               cwd=tmp_path)  # fmt: skip
    assert flat.returncode == 0, flat.stderr
    with (tmp_path / "d.csv").open(encoding="utf-8-sig") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["Chiến dịch"] == campaign and row["Người nhận"] == "3"

    book = tmp_path / "d.xlsx"
    assert loa("report", "--daily", "today", "-o", str(book), cwd=tmp_path).returncode == 0
    assert load_workbook(book, read_only=True).sheetnames == [
        "Trong ngày", "Theo giờ trong ngày", "Chiến dịch"
    ]  # fmt: skip

    quiet = loa("report", "--daily", "2020-08-01", "-o", str(tmp_path / "q.csv"), "-f", "csv",
                "--json", cwd=tmp_path)  # fmt: skip
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["campaigns"] == []


def test_bad_daily_requests_are_named_with_exit_2(tmp_path):
    campaign = "bluezone-ninh-thuan-2020"  # refused before any ledger is read
    out = str(tmp_path / "d.xlsx")
    cases = {
        ("report", "--daily", "28/11/2026", "-o", out): "not a date",
        ("report", "--daily", "2999-01-01", "-o", out): "has not come yet",
        ("report", campaign, "--daily", "today", "-o", out): "name one campaign, or --daily",
        ("report", "-o", out): "name one campaign, or --daily",
        ("report", "--daily", "today", "--by", "Huyện", "-o", out): "--by is for one campaign",
        ("report", "--daily", "today"): "--out PATH",
    }
    for args, needle in cases.items():
        result = loa(*args, cwd=tmp_path)
        assert result.returncode == 2 and needle in result.stderr, (args, result.stderr)
    assert not (tmp_path / "d.xlsx").exists()


def test_failures_carry_the_meaning_of_their_code(tmp_path):
    env = {
        "LOA_PROVIDERS__SANDBOX__PERMANENT_RATE": "1",
        "LOA_PROVIDERS__SANDBOX__RETRYABLE_RATE": "0",
        "LOA_PROVIDERS__SANDBOX__AMBIGUOUS_RATE": "0",
    }
    listing = tmp_path / "list.csv"
    listing.write_text("Số điện thoại\n0912345678\n0987654321\n", encoding="utf-8")
    assert (
        loa(
            "campaign", "launch", str(EXAMPLE), "-r", str(listing), cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    made = loa(
        "report",
        "bluezone-ninh-thuan-2020",
        "-o",
        str(tmp_path / "r.xlsx"),
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    (failure,) = json.loads(made.stdout)["failures"]
    assert (failure["code"], failure["recipients"]) == ("0x0B", 2)
    assert failure["meaning"].startswith("ESME_RINVDSTADR")  # from the provider's own table
    sheet = load_workbook(tmp_path / "r.xlsx", read_only=True)["Lỗi"]
    header, row = list(sheet.iter_rows(values_only=True))
    assert header[2] == "Ý nghĩa" and row[2] == failure["meaning"]
