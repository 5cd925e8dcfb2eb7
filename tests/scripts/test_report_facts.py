"""What a report says is what happened, through the real ``loa report`` (and ``loa campaign
launch``, ``loa demo``): the sending hours the worker applied, the text as the phones got
it, the never-sent messages where the footnote says they are, the recipients in Vietnam's
time and words, a file name that names no format refused, the audit chain sealed and
verified after an embedded run (an all-zero head never shown as a seal), and foreign
numbers named by country, on SQLite and PostgreSQL where a ledger is built directly."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import UTC, datetime
from html import escape

from openpyxl import load_workbook

from campaigns.hours import VIETNAM
from campaigns.template import khong_dau
from tests.ledger.report_scenes import build, spec
from tests.ledger.test_ledger import SPEC
from tests.ledger.test_report import campaign as foreign_campaign
from tests.scripts.test_cli import EXAMPLE, loa
from tests.scripts.test_report_cli import launched

ALL_ZERO = "0" * 64
VIETNAM_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00"


def report(campaign_id, out, env, *extra, cwd):
    """``loa report`` writing ``out``; its ``--json`` figures."""
    run = loa("report", campaign_id, "-o", str(out), "--json", *extra, cwd=cwd, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_an_advertising_report_states_the_hours_the_worker_applied(engine, ledger_url, tmp_path):
    advertising = spec(
        "quang-cao-2026",
        "Khuyến mãi cuối năm",
        category="advertising",
        sending_hours=None,  # none set: Decree 91's 07:00-22:00 applies
        opt_out_instruction="Tu choi: soan TC gui 9xxx",
        add_ad_markers=True,
    )
    assert advertising.sending_hours is None and str(advertising.window) == "07:00-22:00"
    build(engine, advertising, {"delivered": 3, "queued": 2})
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    data = report(advertising.id, tmp_path / "r.html", env, cwd=tmp_path)
    assert data["sending_hours"] == str(advertising.window)  # what held_until is given
    assert data["sending_hours_from"] == "decree_91"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "mọi giờ trong ngày" not in page
    assert "07:00–22:00 hằng ngày (giờ Việt Nam, UTC+7) — mặc định của Nghị định 91/2020" in page
    report(advertising.id, tmp_path / "r.xlsx", env, cwd=tmp_path)
    summary = load_workbook(tmp_path / "r.xlsx", read_only=True)["Tổng hợp"]
    facts = {row[0]: row[1] for row in summary.iter_rows(values_only=True)}
    assert facts["Khung giờ được phép gửi"].startswith("07:00–22:00 hằng ngày")
    assert "Nghị định 91/2020" in facts["Khung giờ được phép gửi"]

    # A public-service campaign without hours is sent at any hour, and says so.
    anytime = spec("cong-ich-2026", "Thông báo", sending_hours=None)
    build(engine, anytime, {"delivered": 2})
    engine.dispose()
    data = report(anytime.id, tmp_path / "p.html", env, cwd=tmp_path)
    assert (data["sending_hours"], data["sending_hours_from"]) == (None, None)
    assert "mọi giờ trong ngày" in (tmp_path / "p.html").read_text(encoding="utf-8")


def test_a_khong_dau_campaign_shows_the_text_as_sent(tmp_path):
    written = (
        "Sở TT&TT Ninh Thuận: đề nghị quý vị cài đặt ứng dụng Bluezone — "
        "“an toàn” cho mọi người. Trân trọng cảm ơn!"
    )
    campaign_file = tmp_path / "khong-dau.toml"
    campaign_file.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        .replace('id = "bluezone-ninh-thuan-2020"', 'id = "khong-dau-2026"')
        .split("[messages]")[0]
        + f'[messages]\nvi = {{ text = "{written}", strip_diacritics = true }}\n',
        encoding="utf-8",
    )
    listing = tmp_path / "list.csv"
    listing.write_text("Số điện thoại\n0912345678\n0987654321\n", encoding="utf-8")
    sent = loa("campaign", "launch", str(campaign_file), "-r", str(listing), cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    data = report("khong-dau-2026", tmp_path / "r.html", {}, cwd=tmp_path)  # its ledger
    as_sent = khong_dau(written)
    assert as_sent.startswith("So TT&TT Ninh Thuan: de nghi quy vi cai dat ung dung Bluezone - ")
    assert data["messages"] == {"vi": as_sent} and data["khong_dau"] == ["vi"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"<blockquote>{escape(as_sent)}</blockquote>" in page
    assert '<span class="lang" data-lang="vi">(không dấu)</span>' in page
    assert "Sở TT&amp;TT" not in page  # the text with diacritics, which no phone got

    # The example's own texts keep their diacritics: no "(không dấu)" beside them.
    (tmp_path / "plain").mkdir()
    plain = launched(tmp_path / "plain")
    data = report(plain, tmp_path / "plain.html", {}, cwd=tmp_path / "plain")
    assert data["khong_dau"] == [] and data["messages"]["vi"].startswith("Sở TT&TT Ninh Thuận")
    assert "(không dấu)" not in (tmp_path / "plain.html").read_text(encoding="utf-8")


def test_cancelled_messages_given_back_after_handing_are_never_sent(engine, ledger_url, tmp_path):
    """A worker marks a group handed before it goes to the provider's lane; the rate gate
    or a throttling provider gives some back (``handed_at`` kept), and the campaign is
    cancelled before they go again: they were never sent, and the hour table says so."""
    cancelled = spec("huy-2026", "Nhắc lịch — huỷ giữa chừng")
    outcomes = {"delivered": 6, "failed": 2, "cancelled": 17}
    build(engine, cancelled, outcomes, handed_back=17)
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    data = report(cancelled.id, tmp_path / "r.html", env, cwd=tmp_path)
    assert data["by_hour"]["not_sent"] == {"cancelled": 17}
    hours = {h: c for h, c in data["by_hour"].items() if h != "not_sent"}
    assert sum(c.get("cancelled", 0) for c in hours.values()) == 0
    assert sum(sum(c.values()) for c in hours.values()) == 8  # the ones a provider saw
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "kể cả tin đã được lấy ra để gửi rồi trả lại hàng chờ" in page  # the footnote


def test_recipients_in_vietnam_time_and_words(engine, ledger_url, tmp_path):
    scene = spec("nguoi-nhan-2026", "Người nhận")
    statuses = build(engine, scene, {"delivered": 4, "undelivered": 2, "failed": 1, "queued": 3})
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    report(scene.id, tmp_path / "r.csv", env, cwd=tmp_path)
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "Mã tin", "Số điện thoại (đã che)", "Quốc gia", "Nhà mạng", "Nhà cung cấp", "Trạng thái",
        "Mã lỗi", "Số lần thử gửi", "Gửi lúc (giờ Việt Nam, UTC+7)",
        "Kết quả lúc (giờ Việt Nam, UTC+7)",
    ]  # fmt: skip
    labels = {"delivered": "Đã đến máy", "undelivered": "Không đến máy", "failed": "Thất bại",
              "queued": "Đang chờ gửi"}  # fmt: skip
    assert Counter(row["Trạng thái"] for row in rows) == {labels[s]: n for s, n in statuses.items()}
    assert all("*" in row["Số điện thoại (đã che)"] for row in rows)
    taken = [row for row in rows if row["Trạng thái"] in ("Đã đến máy", "Không đến máy")]
    moments = [
        row[f"{when} lúc (giờ Việt Nam, UTC+7)"] for row in taken for when in ("Gửi", "Kết quả")
    ]
    assert len(moments) == 12 and all(re.fullmatch(VIETNAM_ISO, m) for m in moments)
    assert all(not row["Gửi lúc (giờ Việt Nam, UTC+7)"] for row in rows if row not in taken)

    # English: the machine form scripts read, the times in Vietnam with their offset.
    run = loa("report", scene.id, "-o", str(tmp_path / "en.csv"), "--lang", "en", cwd=tmp_path,
              env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    with (tmp_path / "en.csv").open(encoding="utf-8-sig") as handle:
        english = {row["message_id"]: row for row in csv.DictReader(handle)}
    assert Counter(row["status"] for row in english.values()) == statuses
    for row in rows:  # the same moment both ways
        same = english[row["Mã tin"]]
        assert same["sent_at"] == row["Gửi lúc (giờ Việt Nam, UTC+7)"]
        assert same["final_at"] == row["Kết quả lúc (giờ Việt Nam, UTC+7)"]

    # The workbook: the same words, each time a date cell on Vietnam's clock.
    report(scene.id, tmp_path / "r.xlsx", env, cwd=tmp_path)
    sheet = load_workbook(tmp_path / "r.xlsx")["Người nhận"]
    head, *body = list(sheet.iter_rows())
    assert [c.value for c in head] == list(rows[0])
    for cells, row in zip(body, rows, strict=True):
        assert cells[5].value == row["Trạng thái"]
        at = cells[8].value
        if not row["Gửi lúc (giờ Việt Nam, UTC+7)"]:  # refused or queued: never sent
            assert at is None
            continue
        wall = datetime.fromisoformat(row["Gửi lúc (giờ Việt Nam, UTC+7)"])
        assert at == wall.replace(tzinfo=None) and cells[8].number_format == "dd/mm/yyyy hh:mm:ss"
        assert wall.astimezone(UTC).astimezone(VIETNAM).utcoffset().total_seconds() == 7 * 3600


def test_an_out_whose_name_says_no_format_is_refused(tmp_path):
    campaign = launched(tmp_path)
    for name, said in (("bao-cao.pdf", "the extension .pdf"), ("x", "it has no extension")):
        run = loa("report", campaign, "--out", str(tmp_path / name), cwd=tmp_path)
        assert run.returncode == 2, (name, run.stderr)
        assert said in run.stderr and ".html, .htm, .xlsx or .csv" in run.stderr
        assert "--format" in run.stderr and run.stderr.count("\n") == 1
        assert not (tmp_path / name).exists()
    run = loa("report", campaign, "--out", str(tmp_path / "x"), "--format", "csv", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "x").read_text(encoding="utf-8-sig").startswith("Mã tin,")


def test_an_embedded_launch_seals_and_verifies_the_chain(tmp_path):
    campaign = launched(tmp_path)
    data = report(campaign, tmp_path / "r.html", {}, cwd=tmp_path)  # no --verify
    audit = data["audit"]
    assert audit["unsealed"] == 0 and audit["head_seq"] > 0 and audit["head"] != ALL_ZERO
    assert audit["verified"]["ok"] and audit["sealed_since_verified"] == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Chuỗi băm toàn vẹn" in page and ALL_ZERO not in page
    assert f"<code>{audit['head']}</code>" in page


def test_the_demo_report_shows_a_sealed_verified_chain(tmp_path, tmp_path_factory):
    from tests.scripts.demo_run import demo_in

    demo = demo_in(tmp_path, tmp_path_factory)
    assert demo.returncode == 0, demo.stderr
    campaign = json.loads(demo.stdout)["campaign"]
    env = {"LOA_DATABASE_URL": f"sqlite:///{(tmp_path / 'var' / 'demo.db').as_posix()}"}
    data = report(campaign, tmp_path / "demo.xlsx", env, cwd=tmp_path)
    audit = data["audit"]
    assert audit["verified"]["ok"] and audit["unsealed"] == 0 and audit["head"] != ALL_ZERO
    assert audit["verified"]["sealed"] == audit["head_seq"] > 0  # the whole chain, verified
    summary = load_workbook(tmp_path / "demo.xlsx", read_only=True)["Tổng hợp"]
    facts = {row[0]: row[1] for row in summary.iter_rows(values_only=True)}
    assert facts["Kiểm toán nhật ký"].startswith("Chuỗi băm toàn vẹn")
    assert facts["Mã đầu chuỗi (để đối chiếu)"] == f"#{audit['head_seq']} {audit['head']}"


def test_a_ledger_never_sealed_says_so_rather_than_show_zeros(engine, ledger_url, tmp_path):
    scene = spec("chua-niem-phong-2026", "Chưa niêm phong")
    build(engine, scene, {"delivered": 2})
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    data = report(scene.id, tmp_path / "r.html", env, cwd=tmp_path)
    assert data["audit"]["head_seq"] == 0  # nobody sealed: the head is the chain's start
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert ALL_ZERO not in page and "Mã đầu chuỗi" not in page
    assert "Chưa có mắt xích nào: chưa sự kiện nào được niêm phong vào chuỗi." in page
    report(scene.id, tmp_path / "r.xlsx", env, cwd=tmp_path)
    summary = load_workbook(tmp_path / "r.xlsx", read_only=True)["Tổng hợp"]
    facts = {row[0]: row[1] for row in summary.iter_rows(values_only=True)}
    assert facts["Mã đầu chuỗi (để đối chiếu)"].startswith("Chưa có mắt xích nào")


def test_foreign_numbers_by_country_and_reasons_said_once(engine, ledger_url, tmp_path):
    foreign_campaign(engine)  # five Vietnamese numbers and a Korean one
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    data = report(SPEC.id, tmp_path / "r.html", env, cwd=tmp_path)
    assert "KR" in data["by_carrier"]  # the figures keep the code
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    table = page.split('data-breakdown="by_carrier"')[1].split("</table>")[0]
    assert '<td class="g">Nước ngoài · Hàn Quốc (KR)</td>' in table
    assert '<td class="g">KR</td>' not in table
    (undelivered,) = [f for f in data["failures"] if f["status"] == "undelivered"]
    assert undelivered["meaning"] == "không liên lạc được với máy người nhận"
    assert undelivered["provider_meaning"] == "not delivered: the handset could not be reached"
    reasons = page.split('data-breakdown="failures"')[1].split("</table>")[0]
    assert "Không đến máy</b> · <code>001</code>" in reasons
    assert "không đến máy:" not in reasons.casefold()  # said once

    english = report(SPEC.id, tmp_path / "en.html", env, "--lang", "en", cwd=tmp_path)
    (undelivered,) = [f for f in english["failures"] if f["status"] == "undelivered"]
    assert undelivered["meaning"] == "the handset could not be reached"
    assert "Abroad · South Korea (KR)" in (tmp_path / "en.html").read_text(encoding="utf-8")
    report(SPEC.id, tmp_path / "r.xlsx", env, cwd=tmp_path)
    sheet = load_workbook(tmp_path / "r.xlsx", read_only=True)["Theo nhà mạng"]
    groups = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "Nước ngoài · Hàn Quốc (KR)" in groups and "KR" not in groups


def test_bidirectional_overrides_from_outside_cannot_reorder_the_report():
    """A right-to-left override in a campaign's name or a list's district would show
    "gnp.exe" as "exe.png": the page carries a replacement character instead."""
    from scripts.reports.html import page
    from scripts.reports.words import LABELS

    words = LABELS["vi"]
    title = "Chiến dịch \u202egnp.exe"
    district = "<td>Ninh H\u2067ải\u2069</td>"
    html = page(title, "BÁO CÁO", [district], words, "2026-11-30T01:00:00+00:00")
    assert not any(
        control in html for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    )
    assert "Chiến dịch \ufffdgnp.exe" in html


def test_why_a_campaign_waits_is_said_in_the_reports_language(engine, ledger_url, tmp_path):
    """A paused campaign's reason, recorded in Loa's words, was shown in English under the
    Vietnamese badge; a provider's own words after "halted:" stay as they came."""
    from ledger.halts import halt
    from ledger.messages import set_campaign_state

    paused = spec("tam-dung-2026", "Tạm dừng")
    build(engine, paused, {"delivered": 2, "queued": 3})
    set_campaign_state(engine, paused.id, "paused", "paused by an operator", source="operator")
    halted = spec("dung-2026", "Nhà cung cấp dừng")
    build(engine, halted, {"queued": 2})
    halt(engine, halted.provider, "0x0E invalid password")
    engine.dispose()
    env = {"LOA_DATABASE_URL": ledger_url}
    report(paused.id, tmp_path / "p.html", env, cwd=tmp_path)
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "tạm dừng bởi người vận hành" in page and "paused by an operator" not in page
    report(paused.id, tmp_path / "p-en.html", env, "--lang", "en", cwd=tmp_path)
    assert "paused by an operator" in (tmp_path / "p-en.html").read_text(encoding="utf-8")
    report(halted.id, tmp_path / "h.xlsx", env, cwd=tmp_path)
    facts = load_workbook(tmp_path / "h.xlsx", read_only=True)["Tổng hợp"]
    (state,) = [row[1] for row in facts.iter_rows(values_only=True) if row[0] == "Trạng thái"]
    assert f"nhà cung cấp {halted.provider} bị dừng: 0x0E invalid password" in state
