"""``loa report``: a campaign's delivery report, for people who look rather than query.

CSV: one row per recipient, final state, number masked. XLSX: a summary sheet (every
recipient counted in exactly one state, the totals adding up on the page), one sheet per
breakdown, and the recipients. Labels in Vietnamese by default, English with
``--lang en``. The aggregation is ``ledger.report`` (in SQL).
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from campaigns.files import atomic_private, xlsx_append
from scripts.common import JsonOption, ledger_runtime, settings
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json
from scripts.report_html import reason_label


class Format(StrEnum):
    HTML = "html"
    CSV = "csv"
    XLSX = "xlsx"


class Lang(StrEnum):
    VI = "vi"
    EN = "en"


LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "summary": "Tổng hợp", "item": "Mục", "count": "Số lượng", "rows_read": "Số dòng đã đọc",
        "rejected": "Bị loại", "duplicates": "Trùng lặp", "suppressed": "Bị chặn",
        "recipients": "Người nhận", "parts_billed": "Số tin tính cước", "cost": "Chi phí ước tính",
        "delivery_rate": "Tỷ lệ đến máy", "by_column": "Theo", "by_carrier": "Theo nhà mạng",
        "by_provider": "Theo nhà cung cấp", "by_hour": "Theo giờ gửi", "failures": "Lỗi",
        "recipients_sheet": "Người nhận", "group": "Nhóm", "total": "Tổng",
        "provider": "Nhà cung cấp", "code": "Mã lỗi", "meaning": "Ý nghĩa",
        "report": "Báo cáo kết quả gửi tin", "lang": "vi", "audit": "Kiểm toán nhật ký",
        "audit_ok": "Chuỗi băm toàn vẹn: nhật ký không bị sửa đổi",
        "audit_broken": "Chuỗi băm bị đứt: nhật ký đã bị sửa đổi", "audit_head": "Đầu chuỗi",
        "queued": "Đang chờ", "sending": "Đang gửi", "sent": "Đã gửi", "delivered": "Đã đến máy",
        "undelivered": "Không đến máy", "failed": "Thất bại", "expired": "Hết hạn",
        "unknown": "Không rõ", "cancelled": "Đã huỷ",
        "timeline": "Tiến độ gửi tin và đến máy (luỹ kế)", "daily": "Báo cáo ngày",
        "campaign": "Chiến dịch", "that_day": "Trong ngày", "state": "Trạng thái",
        "by_hour_day": "Theo giờ trong ngày", "campaigns_sheet": "Chiến dịch",
        "no_activity": "Không có chiến dịch nào hoạt động trong ngày này.", "name": "Tên",
        "timeline_sheet": "Tiến độ",
        "audit_never": "Chưa kiểm tra toàn bộ chuỗi băm (chạy loa audit verify)",
        "audit_verified_at": "Kiểm tra toàn bộ lúc", "audit_links": "mắt xích",
        "audit_since": "niêm phong sau lần kiểm tra", "audit_unsealed": "sự kiện chờ niêm phong",
    },
    "en": {
        "summary": "Summary", "item": "Item", "count": "Count", "rows_read": "Rows read",
        "rejected": "Rejected", "duplicates": "Duplicates", "suppressed": "Suppressed",
        "recipients": "Recipients", "parts_billed": "Parts billed", "cost": "Estimated cost",
        "delivery_rate": "Delivery rate", "by_column": "By", "by_carrier": "By carrier",
        "by_provider": "By provider", "by_hour": "By hour sent", "failures": "Failures",
        "recipients_sheet": "Recipients", "group": "Group", "total": "Total",
        "provider": "Provider", "code": "Error code", "meaning": "Meaning",
        "report": "Delivery report", "lang": "en", "audit": "Audit log",
        "audit_ok": "Hash chain intact: the log was not altered",
        "audit_broken": "Hash chain broken: the log was altered", "audit_head": "Chain head",
        "queued": "Queued", "sending": "Sending", "sent": "Sent", "delivered": "Delivered",
        "undelivered": "Undelivered", "failed": "Failed", "expired": "Expired",
        "unknown": "Unknown", "cancelled": "Cancelled",
        "timeline": "Sends and deliveries over time (cumulative)", "daily": "Daily report",
        "campaign": "Campaign", "that_day": "That day", "state": "State",
        "by_hour_day": "By hour of the day", "campaigns_sheet": "Campaigns",
        "no_activity": "No campaign was active that day.", "name": "Name",
        "timeline_sheet": "Timeline",
        "audit_never": "The whole chain was never verified (run loa audit verify)",
        "audit_verified_at": "Whole chain verified at", "audit_links": "links",
        "audit_since": "sealed since", "audit_unsealed": "events waiting to be sealed",
    },
}  # fmt: skip
STATES = ("delivered", "undelivered", "failed", "expired", "unknown", "cancelled", "sent",
          "sending", "queued")  # fmt: skip


EXCEL_ROWS = 1_048_576


def _check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        fail(f"{path}: is a folder; name the report file", BAD_INPUT)
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        fail(f"{path}: cannot write there (no such folder, or no permission)", BAD_INPUT)


def _sheet_title(text: str) -> str:
    """Excel's rules: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", "-", text)[:31]


def _breakdown(sheet: Any, words: dict[str, str], rows: dict[Any, dict[str, int]]) -> None:
    xlsx_append(sheet, [words["group"], *(words[s] for s in STATES), words["total"]])
    for group, counts in sorted(rows.items(), key=lambda item: str(item[0])):
        values = [counts.get(s, 0) for s in STATES]
        xlsx_append(sheet, [str(group) or "-", *values, sum(values)])


def _write_xlsx(engine: Any, data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """The workbook, every string in it a text cell (``campaigns.files.xlsx_append``):
    a district or an error code such as ``=HYPERLINK(…)`` is shown, never run."""
    from openpyxl import Workbook

    from ledger.export import RECIPIENT_COLUMNS, recipient_rows

    book = Workbook(write_only=True)
    summary = book.create_sheet(words["summary"])
    xlsx_append(summary, [words["item"], words["count"]])
    for key in ("rows_read", "rejected", "duplicates", "suppressed", "recipients"):
        xlsx_append(summary, [words[key], data[key]])
        if key == "rejected":
            for reason, count in data["rejected_by_reason"].items():
                xlsx_append(summary, [f"    {reason_label(reason, words['lang'])}", count])
    for state in STATES:
        xlsx_append(summary, [f"  {words[state]}", data["statuses"].get(state, 0)])
    xlsx_append(summary, [words["parts_billed"], data["parts_billed"]])
    xlsx_append(summary, [words["cost"], data["cost"]])
    xlsx_append(summary, [words["delivery_rate"], data["delivery_rate"]])
    verified = data["audit"]["verified"]
    if verified is None:
        xlsx_append(summary, [words["audit"], words["audit_never"]])
    else:
        verdict = words["audit_ok"] if verified["ok"] else words["audit_broken"]
        xlsx_append(
            summary, [words["audit"], f"{verdict} ({words['audit_verified_at']} {verified['at']})"]
        )
    head = f"#{data['audit']['head_seq']} {data['audit']['head']}"
    xlsx_append(summary, [words["audit_head"], head])
    sheets = [("by_carrier", data["by_carrier"]), ("by_provider", data["by_provider"])]
    sheets.append(("by_hour", data["by_hour"]))
    if data["by"]:
        sheets.insert(0, ("by_column", data["by_column"]))
    for key, rows in sheets:
        title = f"{words[key]} {data['by']}" if key == "by_column" else words[key]
        _breakdown(book.create_sheet(_sheet_title(title)), words, rows)
    if data["timeline"]:
        _timeline_sheet(book.create_sheet(words["timeline_sheet"]), words, data["timeline"])
    failures = book.create_sheet(words["failures"])
    xlsx_append(failures, [words["provider"], words["code"], words["meaning"], words["count"]])
    for failure in data["failures"]:
        xlsx_append(
            failures,
            [failure["provider"], failure["code"], failure["meaning"], failure["recipients"]],
        )
    # Excel holds 1,048,576 rows a sheet: a larger campaign's recipients go on in more.
    for n, row in enumerate(recipient_rows(engine, data["campaign"])):
        if n % (EXCEL_ROWS - 1) == 0:
            part = n // (EXCEL_ROWS - 1) + 1
            title = words["recipients_sheet"] + (f" {part}" if part > 1 else "")
            recipients = book.create_sheet(title)
            xlsx_append(recipients, RECIPIENT_COLUMNS)
        xlsx_append(recipients, row)
    book.save(handle)


def _timeline_sheet(sheet: Any, words: dict[str, str], timeline: dict[str, Any]) -> None:
    """One row per step: its start in Vietnam's time, sends and deliveries, and both
    cumulative."""
    from datetime import datetime, timedelta

    from campaigns.hours import VIETNAM

    start, step = datetime.fromisoformat(timeline["start"]), timeline["step_seconds"]
    xlsx_append(
        sheet,
        [
            words["timeline"],
            words["sent"],
            words["delivered"],
            *(f"Σ {words[k]}" for k in ("sent", "delivered")),
        ],
    )
    total_sent = total_delivered = 0
    for n, (sent, delivered) in enumerate(
        zip(timeline["sent"], timeline["delivered"], strict=True)
    ):
        total_sent, total_delivered = total_sent + sent, total_delivered + delivered
        moment = (start + timedelta(seconds=n * step)).astimezone(VIETNAM).replace(tzinfo=None)
        xlsx_append(sheet, [moment, sent, delivered, total_sent, total_delivered])


#: Loa's own codes (not a provider's), as the worker, reaper and finaliser record them.
LOA_CODES = {
    "validity_passed": "validity passed before it could be sent",
    "lease_expired_after_handover": "a worker died after handing it over: may have gone out",
    "no_final_receipt": "no final receipt within the provider's window",
    "read_timeout": "no answer after sending: may have gone out",
    "bad_answer": "an answer that could not be read: may have gone out",
}


def _meaning(runtime: Any, provider: str, code: str) -> str:
    if code in LOA_CODES:
        return LOA_CODES[code]
    try:
        return runtime.provider(provider).describe(code) or ""
    except Exception:  # a provider no longer configured: the code alone
        return ""


def _format(given: Format | None, out_path: Path) -> Format:
    """The format asked for, or the one the file's name says (``.html``/``.htm``,
    ``.xlsx``, ``.csv``), else XLSX. One that contradicts the name is refused: an auditor
    sent ``bao-cao.html`` holding a spreadsheet cannot open it."""
    suffix = out_path.suffix.lower().removeprefix(".")
    named = Format.HTML if suffix == "htm" else next((f for f in Format if f.value == suffix), None)
    if given is None:
        return named or Format.XLSX
    if named is not None and named is not given:
        fail(f"{out_path}: the name says {named.value}, --format says {given.value}", BAD_INPUT)
    return given


def report(
    campaign_id: Annotated[
        str | None, typer.Argument(help="The campaign's id, as in its file (or use --daily).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="The report file to write.")
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="html (one file, phone and print), xlsx, csv. Default: from the --out "
            "file's extension, else xlsx.",
        ),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Labels: vi (default) or en.")] = Lang.VI,
    by: Annotated[
        str | None,
        typer.Option("--by", help="A list column to break down by (default: district)."),
    ] = None,
    daily: Annotated[
        str | None,
        typer.Option(
            "--daily",
            metavar="DATE",
            help="Instead of one campaign: every campaign active on DATE (YYYY-MM-DD, today "
            "or yesterday; Vietnam's day), its moves that day and its standing now.",
        ),
    ] = None,
    verify_now: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Seal pending events and verify the whole audit chain first (as `loa audit "
            "verify`); without it the report shows the last recorded verification.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a campaign's delivery report: every recipient in exactly one final state
    (numbers masked), intake counts, parts billed, cost, delivery rate, a timeline of
    sends and deliveries, and breakdowns by district (or `--by` column), carrier,
    provider, hour, and failures by error code. With `--daily DATE`, the day's update
    across campaigns instead. `--json` prints the figures too. Exit 2 for an unknown or
    empty campaign, an unwritable path, a column the list never had or a bad date.

    Examples:
      loa report bluezone-ninh-thuan-2020 --format html --out bao-cao.html
      loa report --daily yesterday --format html --out ngay.html
    """
    if (campaign_id is None) == (daily is None):
        fail("name one campaign, or --daily DATE for every campaign active that day", BAD_INPUT)
    if out_path is None:
        fail("--out PATH: where to write the report", BAD_INPUT)
    if daily is not None and by is not None:
        fail("--by is for one campaign's report, not --daily", BAD_INPUT)
    fmt = _format(fmt, out_path)
    _check_writable(out_path)
    words = LABELS[lang.value]
    # Written beside the target under a fresh private name (0600, never through a link)
    # and renamed onto it when complete: a failed report leaves nothing.
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(atomic_private(out_path))
        except OSError as exc:
            fail(f"{out_path}: cannot write there ({exc.strerror})", BAD_INPUT)
        with errors_as_exit_codes(), ledger_runtime(settings()) as runtime:
            if daily is not None:
                data = write_daily_report(runtime, daily, fmt, words, handle, verify_now)
            else:
                data = _campaign(runtime, campaign_id, by, fmt, words, handle, verify_now)
    if as_json:
        print_json({"out": str(out_path), **data})
        return
    if daily is not None:
        out.print(f"{words['daily']} {data['day']}: {len(data['campaigns'])} → {out_path}")
    else:
        out.print(f"{words['recipients']}: {data['recipients']:,} → {out_path}")


def _audit(runtime: Any, verify_now: bool) -> dict[str, Any]:
    """The audit chain's status for the report; with ``verify_now``, pending events are
    sealed and the whole chain verified (and recorded) first, as `loa audit verify` does."""
    from ledger.chain import audit_status, record_verdict, seal_all, verify

    if verify_now:
        seal_all(runtime.engine)
        record_verdict(runtime.engine, verify(runtime.engine))
    return audit_status(runtime.engine)


def _campaign(
    runtime: Any,
    campaign_id: str,
    by: str | None,
    fmt: Format,
    words: dict,
    handle: BinaryIO,
    verify_now: bool,
) -> dict[str, Any]:
    from ledger.report import build

    data = build(runtime.engine, campaign_id, by).as_dict()
    data["audit"] = _audit(runtime, verify_now)
    for failure in data["failures"]:
        failure["meaning"] = _meaning(runtime, failure["provider"], failure["code"])
    if fmt is Format.CSV:
        from ledger.export import write_recipients

        write_recipients(runtime.engine, handle, campaign_id, bom=True)  # Excel needs the BOM
    elif fmt is Format.HTML:
        from scripts.report_html import render

        handle.write(render(data, words, STATES, data["audit"]).encode("utf-8"))
    else:
        _write_xlsx(runtime.engine, data, words, handle)
    return data


def write_daily_report(
    runtime: Any, day_text: str, fmt: Format, words: dict, handle: BinaryIO, verify_now: bool
) -> dict[str, Any]:
    """Write the day's update across campaigns (``--daily DAY_TEXT``) in ``fmt`` to the
    open file ``handle``; returns its figures. Exits 2 (``fail``) for a bad day."""
    from ledger.daily import build_daily
    from scripts import report_daily

    try:
        day = report_daily.parse_day(day_text)
    except report_daily.DayError as error:
        fail(str(error), BAD_INPUT)
    data = build_daily(runtime.engine, day).as_dict()
    data["audit"] = _audit(runtime, verify_now)
    if fmt is Format.CSV:
        report_daily.write_csv(data, words, handle)
    elif fmt is Format.HTML:
        from scripts.report_html import render_daily

        handle.write(render_daily(data, words, data["audit"]).encode("utf-8"))
    else:
        report_daily.write_xlsx(data, words, handle)
    return data
