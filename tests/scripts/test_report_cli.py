"""``loa report`` as an auditor runs it: files that open, labels in Vietnamese, numbers
masked, and bad requests named with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

from campaigns.hours import VIETNAM
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
    *by_district, total = list(book["Theo Huyện"].iter_rows(values_only=True))[1:]
    assert sum(row[-1] for row in by_district) == total[-1] == 3  # the totals add up on the page
    assert summary["Trạng thái"].startswith("Đã hoàn tất")  # the campaign, before its figures
    assert summary["Tên người gửi (brandname)"] == "NinhThuan"
    numbers = [row[1] for row in book["Người nhận"].iter_rows(min_row=2, values_only=True)]
    assert numbers and all("*" in n for n in numbers)  # masked

    english = loa("report", campaign, "-o", str(tmp_path / "r.xlsx"), "--lang", "en", cwd=tmp_path)
    assert english.returncode == 0
    assert load_workbook(tmp_path / "r.xlsx", read_only=True).sheetnames[0] == "Summary"

    page = loa("report", campaign, "-o", str(tmp_path / "r.html"), "-f", "html", cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    # The embedded launch sealed and verified the chain as it ended (no housekeeper here).
    first = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Chuỗi băm toàn vẹn" in first and "lần kiểm tra gần nhất được ghi lại" in first
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
    assert len(rows) == 3 and all("*" in row["Số điện thoại (đã che)"] for row in rows)


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


def vietnam_today() -> str:
    return datetime.now(VIETNAM).date().isoformat()


def launched_within_one_day(tmp_path: Path) -> tuple[str, Path, str]:
    """``launched`` from start to end within one day in Vietnam (again, in a fresh
    folder, if midnight passed meanwhile): the campaign, and the folder and day."""
    for attempt in range(2):
        folder = tmp_path / f"launch-{attempt}"
        folder.mkdir()
        before = vietnam_today()
        campaign = launched(folder)
        if vietnam_today() == before:
            return campaign, folder, before
    raise AssertionError("midnight passed during each of two launches")


def test_the_daily_update(tmp_path):
    # The day the campaign was sent, named: "today" would be the next day's once the
    # test ran past midnight in Vietnam.
    campaign, tmp_path, day = launched_within_one_day(tmp_path)
    made = loa("report", "--daily", day, "-f", "html", "-o", str(tmp_path / "d.html"),
               "--json", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    daily = json.loads(made.stdout)
    assert daily["day"] == day
    (active,) = daily["campaigns"]
    assert active["campaign"] == campaign and active["recipients"] == 3
    assert active["state"] == "completed"  # every recipient final: not "running" any more
    assert (
        sum(
            active["that_day"].get(s, 0)
            for s in ("delivered", "undelivered", "failed", "unknown", "expired")
        )
        == 3
    )  # fmt: skip - every recipient ended today
    html = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "Báo cáo ngày" in html and 'class="timeline"' in html and "<script" not in html
    assert f'<code class="id">{campaign}</code>' in html and "Đã hoàn tất" in html

    flat = loa("report", "--daily", daily["day"], "-f", "csv", "-o", str(tmp_path / "d.csv"),
               cwd=tmp_path)  # fmt: skip
    assert flat.returncode == 0, flat.stderr
    with (tmp_path / "d.csv").open(encoding="utf-8-sig") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["Chiến dịch"] == campaign and row["Người nhận"] == "3"
    # The rate: a number a spreadsheet computes with, its title saying it runs from 0 to 1.
    rate = row["Tỷ lệ đến máy trong số tin nhà mạng đã báo kết quả (trong ngày, 0–1)"]
    assert 0 <= float(rate) <= 1 and float(rate) == active["delivery_rate_that_day"]

    book = tmp_path / "d.xlsx"
    before = vietnam_today()
    today = loa("report", "--daily", "today", "-o", str(book), "--json", cwd=tmp_path)
    assert today.returncode == 0, today.stderr
    assert json.loads(today.stdout)["day"] in {before, vietnam_today()}  # "today": Vietnam's
    assert load_workbook(book, read_only=True).sheetnames == [
        "Trong ngày", "Theo giờ trong ngày", "Chiến dịch", "Kiểm toán nhật ký"
    ]  # fmt: skip
    head, first, *_ = load_workbook(book)["Trong ngày"].iter_rows()
    assert head[-1].value == "Tỷ lệ đến máy trong số tin nhà mạng đã báo kết quả (trong ngày)"
    assert first[-1].number_format == "0.0%"  # shown as a percentage, kept a number

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
    header, row, total = list(sheet.iter_rows(values_only=True))
    assert header[2] == "Ý nghĩa" and row[2] == failure["meaning"]
    assert failure["meaning"] == "ESME_RINVDSTADR: số nhận không hợp lệ"  # in Vietnamese
    assert failure["provider_meaning"] == "ESME_RINVDSTADR: invalid destination number"
    assert total[0] == "Tổng" and total[3] == 2


def test_an_out_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    """Each used to be a traceback (exit 1) or, for a device, the device replaced."""
    campaign = launched(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.csv")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # Root writes in a folder whatever its mode: there, a file system that takes no file.
    unwritable = Path("/sys/loa-report.csv") if os.geteuid() == 0 else locked / "r.csv"
    cases = {
        tmp_path / "missing" / "r.csv": "cannot write there",  # no such folder
        tmp_path / "file.txt" / "r.csv": "cannot write there",  # a file as the folder
        tmp_path / "folder": "is a folder",
        tmp_path / "pipe.csv": "not a regular file",
        unwritable: "cannot write",
    }
    for out, needle in cases.items():
        result = loa("report", campaign, "-o", str(out), "-f", "csv", cwd=tmp_path)
        assert result.returncode == 2, (out, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {out}: {needle}"), (out, result.stderr)
    assert stat.S_ISFIFO((tmp_path / "pipe.csv").stat().st_mode)  # left as it was
    assert list((tmp_path / "folder").iterdir()) == []


def test_every_failure_meaning_reads_in_vietnamese():
    """Each meaning in the providers' tables (English) and each of Loa's own codes has
    its Vietnamese text, so no failure in a report is explained in English only."""
    from providers.esms import CODE_RESULTS
    from providers.sandbox import MEANINGS
    from providers.twilio import ERROR_CODES
    from scripts.reports.words import LOA_CODES, meaning

    described = {
        **MEANINGS,
        **{code: text for code, (_, text) in CODE_RESULTS.items()},
        **{str(code): text for code, (_, text) in ERROR_CODES.items()},
        "http_503": "HTTP 503 from the provider",
    }
    untranslated = {
        code: text for code, text in described.items() if meaning(code, text, "vi") == text
    }
    assert untranslated == {}
    assert LOA_CODES["vi"].keys() == LOA_CODES["en"].keys()
    assert meaning("validity_passed", "", "vi") == "hết hạn hiệu lực trước khi gửi được"
    assert meaning("0x0B", "ESME_RINVDSTADR: invalid destination number", "en").startswith("ESME")
