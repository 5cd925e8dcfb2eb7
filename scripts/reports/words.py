"""The words of the delivery reports (``loa report``): labels in Vietnamese (the readers'
language) and English, the campaign's states, what each recipient status means (each
failure code: ``meanings``), how a breakdown's groups are named, and the Vietnamese way
of writing numbers (``1.234.567``), shares (``96,1 %``), money (``2.540.300 ₫``) and
times (``30/11/2026 08:05``, Vietnam's time).

Plain data and small functions only: the command line imports this module at start.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# Re-exported: their home is ``meanings``.
from scripts.reports.meanings import LOA_CODES as LOA_CODES
from scripts.reports.meanings import MEANINGS_VI as MEANINGS_VI
from scripts.reports.meanings import meaning as meaning

#: Every recipient status, in the order reports list them: the outcomes first, then what
#: is still under way.
STATES = ("delivered", "undelivered", "failed", "expired", "unknown", "unreachable",
          "cancelled", "unneeded", "sent", "sending", "queued", "standby")  # fmt: skip
#: The statuses of recipients the message did not reach, with a reason code each.
NOT_REACHED = ("undelivered", "failed", "expired", "unknown", "unreachable", "cancelled")
#: A colour per status, the same in every chart and legend of a report.
COLOURS = {
    "delivered": "#1a7f37", "undelivered": "#d4700b", "failed": "#b42318",
    "expired": "#8c6d1f", "unknown": "#8a8f98", "cancelled": "#5b4b8a", "sent": "#5b9bd5",
    "unreachable": "#a0522d", "unneeded": "#9bbf8a", "standby": "#e4e7ec",
    "sending": "#2f6fde", "queued": "#c9ced6",
}  # fmt: skip
SENT_COLOUR, DELIVERED_COLOUR = "#5b9bd5", COLOURS["delivered"]
#: A country's ISO code where a breakdown by carrier holds one (a foreign number).
_COUNTRY = re.compile(r"[A-Z]{2}")

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "summary": "Tổng hợp", "item": "Mục", "count": "Số lượng", "rows_read": "Số dòng đã đọc",
        "rejected": "Bị loại", "duplicates": "Trùng lặp", "suppressed": "Bị chặn",
        "recipients": "Người nhận", "parts_billed": "Số tin tính cước", "cost": "Chi phí ước tính",
        "delivery_rate": "Tỷ lệ đến máy trong số tin nhà mạng đã báo kết quả",
        "by_column": "Theo", "by_carrier": "Theo nhà mạng",
        "by_provider": "Theo nhà cung cấp", "by_hour": "Theo giờ gửi", "failures": "Lỗi",
        "recipients_sheet": "Người nhận", "group": "Nhóm", "total": "Tổng",
        "provider": "Nhà cung cấp", "code": "Mã lỗi", "meaning": "Ý nghĩa",
        "report": "Báo cáo kết quả gửi tin", "lang": "vi", "audit": "Kiểm toán nhật ký",
        "audit_ok": "Chuỗi băm toàn vẹn: nhật ký không bị sửa đổi",
        "audit_broken": "Chuỗi băm bị đứt: nhật ký đã bị sửa đổi",
        "audit_head": "Mã đầu chuỗi (để đối chiếu)",
        "audit_signature": "Điểm kiểm tra đã ký",
        "audit_checkpoint": "Điểm kiểm tra đã ký của nhật ký (kích thước, gốc Merkle, thời "
        "điểm): hãy lưu lại; lần kiểm tra sau sẽ chứng minh nhật ký vẫn chứa nguyên vẹn "
        "mọi sự kiện nó đếm (verify_export.py --since, hoặc loa audit verify --checkpoint).",
        "audit_unsigned": "Nhật ký chưa được ký (chưa đặt LOA_AUDIT_SIGNING_KEY): báo cáo "
        "không kèm điểm kiểm tra nào để đối chiếu về sau.",
        "queued": "Đang chờ gửi", "sending": "Đang gửi", "sent": "Đã gửi, chờ báo nhận",
        "sent_count": "Đã gửi", "messages": "Tin nhắn (mọi kênh)",
        "delivered": "Đã đến máy", "undelivered": "Không đến máy", "failed": "Thất bại",
        "expired": "Hết hạn", "unknown": "Không rõ", "cancelled": "Đã huỷ",
        "unreachable": "Không liên lạc được qua kênh này",
        "unneeded": "Không cần (kênh trước đã tới)", "standby": "Chờ kênh trước",
        "timeline": "Tiến độ gửi tin và đến máy (luỹ kế)", "daily": "Báo cáo ngày",
        "goals": "Mục tiêu", "campaigns_word": "chiến dịch",
        "campaign": "Chiến dịch", "that_day": "Trong ngày", "state": "Trạng thái",
        "by_hour_day": "Theo giờ trong ngày", "campaigns_sheet": "Chiến dịch",
        "no_activity": "Không có chiến dịch nào hoạt động trong ngày này.", "name": "Tên",
        "timeline_sheet": "Tiến độ",
        "audit_never": "Chưa kiểm tra toàn bộ chuỗi băm của nhật ký: báo cáo này chưa xác "
        "nhận được nhật ký không bị sửa đổi.",
        "audit_verified_at": "Kiểm tra toàn bộ lúc", "audit_links": "mắt xích",
        "audit_now": "ngay khi lập báo cáo này (lệnh loa report --verify)",
        "audit_before": "lần kiểm tra gần nhất được ghi lại (bằng loa audit verify, loa "
        "report --verify hoặc lượt kiểm tra tự động hằng ngày)",
        "audit_since": "sự kiện được ghi sau lần kiểm tra đó, chưa được kiểm tra",
        "audit_unsealed": "sự kiện mới nhất chưa được niêm phong vào chuỗi",
        "audit_explain": "Mỗi lần một tin đổi trạng thái đều được ghi vào nhật ký và nối vào "
        "một chuỗi băm: sửa hay xoá bất kỳ dòng nào sẽ làm đứt chuỗi.",
        "headline": "Đã đến {reached} / {recipients} người nhận ({share})",
        "headline_note": "“Đã đến” là số người nhận được nhà mạng xác nhận tin đã tới máy; "
        "tỷ lệ tính trên tổng số người nhận.",
        "cancelled_note": "Chiến dịch đã bị huỷ: {count} người nhận không được gửi tin.",
        "facts": "Thông tin chiến dịch", "campaign_id": "Mã chiến dịch", "category": "Loại tin",
        "public_service": "Thông báo công ích", "advertising": "Quảng cáo",
        "brandname": "Tên người gửi (brandname)", "message_text": "Nội dung tin nhắn",
        "launched": "Khởi chạy lúc", "launched_by": "Người khởi chạy",
        "launched_by_unknown": "không được ghi lại trong nhật ký",
        "follow_ups": "Chiến dịch nhắc lại",
        "follow_up_line": "{campaign}: {recipients} người nhận, {reached} đã đến",
        "reached_together": "Cùng nhau đã đến {reached} / {recipients} người nhận ({share})",
        "reached_together_unknown": "Cùng nhau đã đến: không tính được (số đã ẩn danh; cần LOA_RETENTION_KEY)",
        "actions": "Thao tác sau khi khởi chạy", "act_paused": "tạm dừng",
        "act_resumed": "tiếp tục gửi", "act_cancelled": "huỷ",
        "act_provider_resumed": "mở lại nhà cung cấp", "act_by": "bởi",
        "sending_hours": "Khung giờ được phép gửi", "any_hour": "mọi giờ trong ngày",
        "decree_91": "mặc định của Nghị định 91/2020 cho tin quảng cáo",
        "khong_dau": "(không dấu)",
        "khong_dau_note": "Nội dung như đã gửi tới máy người nhận: đã bỏ dấu tiếng Việt "
        "(tuỳ chọn strip_diacritics của chiến dịch).",
        "audit_no_seal": "Chưa có mắt xích nào: chưa sự kiện nào được niêm phong vào chuỗi.",
        "foreign": "Nước ngoài", "no_carrier": "không rõ nhà mạng",
        "rate_unit": "0–1",
        "every_day": "hằng ngày", "sent_between": "Thời gian gửi thực tế",
        "nothing_sent": "chưa gửi tin nào", "valid_until": "Hạn gửi (hết hiệu lực lúc)",
        "start_at": "Lịch bắt đầu gửi", "list_file": "Danh sách người nhận",
        "zone": "giờ Việt Nam, UTC+7", "generated": "Lập báo cáo lúc",
        "share": "Tỷ lệ", "since": "từ",
        "outcomes_note": "Mỗi người nhận ở đúng một trạng thái; tỷ lệ tính trên tổng số "
        "người nhận.",
        "delivery_rate_note": "Tỷ lệ đến máy trong số tin nhà mạng đã báo kết quả = Đã đến "
        "máy / (Đã đến máy + Không đến máy) = {delivered} / {known}; không tính tin thất "
        "bại, hết hạn, không rõ, đã huỷ hay chưa có kết quả.",
        "not_sent_group": "Chưa gửi đi", "blank_group": "(trống)",
        "hour_note": "Giờ nhà cung cấp nhận tin (tin thất bại, không rõ kết quả hoặc đang "
        "gửi: giờ thử gửi). “Chưa gửi đi”: tin không nhà cung cấp nào nhận (đang chờ, đã "
        "huỷ, hết hạn trước khi gửi), kể cả tin đã được lấy ra để gửi rồi trả lại hàng chờ "
        "(vượt giới hạn tốc độ, nhà cung cấp quá tải hoặc tạm ngừng).",
        "breakdown_note": "Tổng của bảng bằng tổng số người nhận ở bảng Tổng hợp.",
        "rates_caption": "Tỷ lệ đã đến máy trên tổng người nhận của từng nhóm",
        "why_not": "Vì sao chưa đến máy", "outcome": "Kết quả", "no_code": "(không có mã)",
        "reason": "Kết quả · mã lý do",
        "failures_note": "Mọi người nhận không đến máy, thất bại, hết hạn, không rõ hoặc bị "
        "huỷ, theo mã lý do; tổng bằng tổng các trạng thái đó ở bảng Tổng hợp.",
        "scroll_hint": "Kéo ngang bảng để xem các cột khác →",
        "timeline_note": "Số tin luỹ kế theo thời gian ({zone}).",
        "statuses_explained": "Giải thích trạng thái",
        "moves_note": "Số tin chuyển sang từng trạng thái trong ngày (một tin có thể được "
        "đếm ở hai cột, ví dụ đã gửi rồi đã đến máy trong cùng ngày). Cột “Người nhận”: "
        "toàn bộ người nhận của chiến dịch.",
        "standing": "Hiện trạng toàn chiến dịch", "per_hour": "Số tin mỗi giờ ({zone})",
        "day_of": "ngày", "hours": "giờ",
    },
    "en": {
        "summary": "Summary", "item": "Item", "count": "Count", "rows_read": "Rows read",
        "rejected": "Rejected", "duplicates": "Duplicates", "suppressed": "Suppressed",
        "recipients": "Recipients", "parts_billed": "Parts billed", "cost": "Estimated cost",
        "delivery_rate": "Delivery rate among messages the carriers reported on",
        "by_column": "By", "by_carrier": "By carrier",
        "by_provider": "By provider", "by_hour": "By hour sent", "failures": "Failures",
        "recipients_sheet": "Recipients", "group": "Group", "total": "Total",
        "provider": "Provider", "code": "Error code", "meaning": "Meaning",
        "report": "Delivery report", "lang": "en", "audit": "Audit log",
        "audit_ok": "Hash chain intact: the log was not altered",
        "audit_broken": "Hash chain broken: the log was altered",
        "audit_head": "Chain head (for comparison)",
        "audit_signature": "Signed checkpoint",
        "audit_checkpoint": "The log's signed checkpoint (size, Merkle root, time): keep it; "
        "a later check proves the log still holds every event it counts, unchanged (loa "
        "audit verify --checkpoint, or verify_export.py --since in an export).",
        "audit_unsigned": "The log is not signed (LOA_AUDIT_SIGNING_KEY is not set): this "
        "report carries no checkpoint to hold the log to later.",
        "queued": "Queued", "sending": "Sending", "sent": "Sent, awaiting receipt",
        "sent_count": "Sent", "messages": "Messages (all channels)",
        "delivered": "Delivered", "undelivered": "Undelivered", "failed": "Failed",
        "expired": "Expired", "unknown": "Unknown", "cancelled": "Cancelled",
        "unreachable": "Not reachable on this channel",
        "unneeded": "Unneeded (reached before)", "standby": "Waiting for the channel before",
        "timeline": "Sends and deliveries over time (cumulative)", "daily": "Daily report",
        "goals": "Goals", "campaigns_word": "campaigns",
        "campaign": "Campaign", "that_day": "That day", "state": "State",
        "by_hour_day": "By hour of the day", "campaigns_sheet": "Campaigns",
        "no_activity": "No campaign was active that day.", "name": "Name",
        "timeline_sheet": "Timeline",
        "audit_never": "The whole hash chain of the log was never verified: this report "
        "cannot confirm that the log was not altered.",
        "audit_verified_at": "Whole chain verified at", "audit_links": "links",
        "audit_now": "while this report was made (loa report --verify)",
        "audit_before": "the last recorded verification (by loa audit verify, loa report "
        "--verify or the daily automatic check)",
        "audit_since": "events recorded since that verification, not verified yet",
        "audit_unsealed": "latest events not sealed into the chain yet",
        "audit_explain": "Every status change of every message is written to the log and "
        "linked into a hash chain: altering or deleting any line breaks the chain.",
        "headline": "Reached {reached} of {recipients} recipients ({share})",
        "headline_note": "“Reached”: recipients whose carrier confirmed the message arrived "
        "on the phone; the share is of all recipients.",
        "cancelled_note": "The campaign was cancelled: {count} recipients were never sent "
        "the message.",
        "facts": "Campaign", "campaign_id": "Campaign id", "category": "Kind",
        "public_service": "Public service notice", "advertising": "Advertising",
        "brandname": "Sender (brandname)", "message_text": "Message text",
        "launched": "Launched at", "launched_by": "Launched by",
        "launched_by_unknown": "not recorded in the ledger",
        "follow_ups": "Follow-ups",
        "follow_up_line": "{campaign}: {recipients} recipients, {reached} reached",
        "reached_together": "Together reached {reached} of {recipients} recipients ({share})",
        "reached_together_unknown": "Together reached: unknown (numbers replaced by retention; needs LOA_RETENTION_KEY)",
        "actions": "Actions after the launch", "act_paused": "paused",
        "act_resumed": "resumed", "act_cancelled": "cancelled",
        "act_provider_resumed": "provider resumed", "act_by": "by",
        "sending_hours": "Sending hours allowed", "any_hour": "any hour",
        "decree_91": "Decree 91/2020's default for advertising",
        "khong_dau": "(without diacritics)",
        "khong_dau_note": "The text as the phones got it: Vietnamese diacritics removed "
        "(the campaign's strip_diacritics option).",
        "audit_no_seal": "No link yet: no event has been sealed into the chain.",
        "foreign": "Abroad", "no_carrier": "carrier unknown",
        "rate_unit": "0–1",
        "every_day": "every day", "sent_between": "Actually sent",
        "nothing_sent": "nothing sent yet", "valid_until": "May be sent until",
        "start_at": "Scheduled start", "list_file": "Recipient list",
        "zone": "Vietnam time, UTC+7", "generated": "Report made at",
        "share": "Share", "since": "since",
        "outcomes_note": "Every recipient is in exactly one state; shares are of all "
        "recipients.",
        "delivery_rate_note": "Delivery rate among messages the carriers reported on = "
        "Delivered / (Delivered + Undelivered) = {delivered} / {known}; failed, expired, "
        "unknown, cancelled and pending messages are not counted.",
        "not_sent_group": "Never sent", "blank_group": "(blank)",
        "hour_note": "The hour the provider took the message (failed, unknown or in "
        "flight: the hour it was tried). “Never sent”: no provider took it (queued, "
        "cancelled, expired before sending), including those taken out to be sent and "
        "given back to the queue (over the rate limit, the provider busy or stopped).",
        "breakdown_note": "The table's total equals the recipients in the summary.",
        "rates_caption": "Share of each group's recipients reached",
        "why_not": "Why messages did not arrive", "outcome": "Outcome", "no_code": "(no code)",
        "reason": "Outcome · reason code",
        "failures_note": "Every recipient undelivered, failed, expired, unknown or "
        "cancelled, by reason code; the total equals those states in the summary.",
        "scroll_hint": "Scroll the table sideways for more columns →",
        "timeline_note": "Cumulative messages over time ({zone}).",
        "statuses_explained": "What the states mean",
        "moves_note": "Messages that reached each state that day (one message may count "
        "in two columns, e.g. sent and then delivered the same day). “Recipients”: all of "
        "the campaign's recipients.",
        "standing": "Where the whole campaign stands", "per_hour": "Messages per hour ({zone})",
        "day_of": "day", "hours": "hours",
    },
}  # fmt: skip

#: A message text's language, by its code in the campaign file.
LANGUAGES: dict[str, dict[str, str]] = {
    "vi": {"vi": "Tiếng Việt", "en": "Tiếng Anh", "zh": "Tiếng Trung", "ko": "Tiếng Hàn",
           "ja": "Tiếng Nhật", "ru": "Tiếng Nga", "fr": "Tiếng Pháp", "th": "Tiếng Thái"},
    "en": {"vi": "Vietnamese", "en": "English", "zh": "Chinese", "ko": "Korean",
           "ja": "Japanese", "ru": "Russian", "fr": "French", "th": "Thai"},
}  # fmt: skip

#: The campaign's state as ``loa campaign status`` derives it, for people.
STATE_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "scheduled": "Đã lên lịch, chưa bắt đầu", "running": "Đang gửi",
        "completed": "Đã hoàn tất", "paused": "Tạm dừng",
        "halted": "Bị dừng do lỗi nhà cung cấp", "cancelled": "Đã huỷ",
    },
    "en": {
        "scheduled": "Scheduled, not started", "running": "Sending",
        "completed": "Completed", "paused": "Paused",
        "halted": "Stopped by a provider error", "cancelled": "Cancelled",
    },
}  # fmt: skip

#: What each recipient status means, for a reader who never saw the system.
STATUS_NOTES: dict[str, dict[str, str]] = {
    "vi": {
        "delivered": "nhà mạng (hoặc kênh gửi) xác nhận tin đã tới máy người nhận.",
        "undelivered": "nhà mạng báo không giao được (máy tắt lâu, ngoài vùng phủ sóng …).",
        "failed": "nhà cung cấp từ chối tin (số không hợp lệ …); không tính cước.",
        "expired": "quá hạn hiệu lực trước khi gửi được.",
        "unknown": "không có kết quả cuối cùng: tin có thể đã đến hoặc không.",
        "cancelled": "chiến dịch bị huỷ trước khi tin được gửi.",
        "unreachable": "kênh này không tới được người nhận (không có tài khoản trên kênh đó …); "
        "kênh sau (SMS) được gửi thay.",
        "unneeded": "tin của kênh sau, không gửi vì kênh trước đã tới người nhận.",
        "standby": "tin của kênh sau, chờ kết quả của kênh trước.",
        "sent": "nhà cung cấp đã nhận tin, đang chờ nhà mạng báo kết quả.",
        "sending": "đang được chuyển cho nhà cung cấp.",
        "queued": "chưa đến lượt gửi.",
    },
    "en": {
        "delivered": "the carrier (or the channel) confirmed the message reached the phone.",
        "undelivered": "the carrier could not deliver it (phone off too long, no coverage …).",
        "failed": "the provider refused it (invalid number …); not billed.",
        "expired": "its validity passed before it could be sent.",
        "unknown": "no final result: it may or may not have arrived.",
        "cancelled": "the campaign was cancelled before it was sent.",
        "unreachable": "this channel cannot reach the person (no account on it …); the next "
        "channel (SMS) is sent instead.",
        "unneeded": "a later channel's message, not sent: the channel before reached them.",
        "standby": "a later channel's message, waiting for the channel before.",
        "sent": "the provider took it; the carrier has not reported yet.",
        "sending": "being handed to the provider.",
        "queued": "not sent yet.",
    },
}  # fmt: skip


def group_label(key: str, group: Any, words: dict[str, str]) -> str:
    """A breakdown's group as reports name it: an hour as ``07:00–07:59``, the messages
    never sent by their own words, a foreign number's country (``carrier_label``), a
    blank list cell as ``(trống)``."""
    if key == "by_hour":
        if str(group) == "not_sent":
            return words["not_sent_group"]
        return f"{int(group):02d}:00–{int(group):02d}:59"
    if key == "by_carrier":
        return carrier_label(str(group), words)
    return str(group) or words["blank_group"]


def carrier_label(group: str, words: dict[str, str]) -> str:
    """A carrier as it is named (``viettel``); the by-carrier breakdown holds a foreign
    number's country code instead (``ledger.reports.campaign``: no Vietnamese carrier carries it),
    said as such: ``Nước ngoài · Hàn Quốc (KR)`` (``Abroad · South Korea (KR)``)."""
    if not _COUNTRY.fullmatch(group):
        return group or words["blank_group"]
    name = country_name(group, words["lang"])
    if group == "VN":
        return f"{name} ({words['no_carrier']})"
    return f"{words['foreign']} · {name} ({group})" if name else f"{words['foreign']} · {group}"


def country_name(code: str, lang: str) -> str:
    """A country's name in ``lang`` from its ISO code (``KR`` -> ``Hàn Quốc``), from the
    phone-number library's own table; ``""`` for a code it does not name."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = LOCALE_DATA.get(code, {})
    name = names.get(lang, "") or names.get("en", "")
    if name.startswith("*"):  # "*en": held under another language's entry
        name = names.get(name[1:], "")
    return name


def reason_label(reason: str, lang: str) -> str:
    """A reject reason in the report's language (the command line's labels are both)."""
    from scripts.output import REJECT_LABELS

    label = REJECT_LABELS.get(reason)
    if label is None:
        return reason
    vi, _, en = label.partition(" · ")
    return vi if lang == "vi" else (en or vi)


#: The reasons Loa records for a campaign's state that carry a name or a time
#: (``ledger.listing``, ``ledger.intake``); fixed sentences are ``scripts.formats.WHY``'s.
#: A provider's own words after "halted:" are its, kept as they came.
_HALTED = re.compile(r"provider (?P<name>\S+) halted: (?P<why>.*)")
_STARTS = re.compile(r"starts at (?P<at>\S+)")


def state_reason(reason: str, lang: str) -> str:
    """Why a campaign is in its state, in the report's language: ``paused by an
    operator`` is ``tạm dừng bởi người vận hành``, ``provider X halted: why`` is ``nhà
    cung cấp X bị dừng: why``, ``starts at …`` gives Vietnam's time. Several halts are
    joined by ``;``. Anything else is shown as recorded."""
    if lang != "vi":
        return reason
    from scripts.formats import WHY

    said = []
    for part in reason.split("; "):
        if part in WHY:
            said.append(WHY[part])
        elif (halted := _HALTED.fullmatch(part)) is not None:
            said.append(f"nhà cung cấp {halted['name']} bị dừng: {halted['why']}")
        elif (starts := _STARTS.fullmatch(part)) is not None:
            try:
                said.append(f"bắt đầu lúc {moment(starts['at'], lang)} (giờ Việt Nam)")
            except ValueError:
                said.append(part)
        else:
            said.append(part)
    return "; ".join(said)


def number(value: int | float, lang: str = "vi") -> str:
    """A whole number with thousands grouped: ``1.234.567`` (``1,234,567`` in English)."""
    from scripts.formats import count

    return count(value) if lang == "vi" else f"{round(value):,}"


def percent(part: int | float, whole: int | float, lang: str = "vi") -> str:
    """``part`` as a share of ``whole``, one decimal: ``96,1 %`` (``96.1%``); ``"–"``
    when ``whole`` is zero."""
    if not whole:
        return "–"
    return share(part / whole, lang)


def share(rate: float, lang: str = "vi") -> str:
    """A rate between 0 and 1 as a percentage: ``96,1 %`` (no-break space), ``96.1%``."""
    from scripts.formats import decimal

    # A no-break space: a figure and its sign never part at a line's end in a table.
    return f"{decimal(rate * 100)}\u00a0%" if lang == "vi" else f"{rate * 100:.1f}%"


def money(amount: float, currency: str | None, lang: str = "vi") -> str:
    """An amount of money: đồng without decimals and with their sign (``2.540.300 ₫``),
    other currencies with two decimals and their code (``12,50 USD``)."""
    code = (currency or "VND").upper()
    if code == "VND":
        return f"{number(amount, lang)}\u00a0₫"
    from scripts.formats import decimal

    return f"{decimal(amount, 2) if lang == 'vi' else f'{amount:,.2f}'}\u00a0{code}"


def span(first: datetime | str, last: datetime | str, lang: str = "vi") -> str:
    """From one moment to another in Vietnam's time, the date said once when both fall
    on the same day: ``30/11/2026 08:05–11:40``."""
    start, end = moment(first, lang), moment(last, lang)
    day, _, clock = end.partition(" ")
    if start.startswith(day + " "):
        return f"{start}–{clock}"
    return f"{start} – {end}"


def moment(at: datetime | str, lang: str = "vi", seconds: bool = False) -> str:
    """A moment in Vietnam's time: ``30/11/2026 08:05`` (``2026-11-30 08:05`` in
    English), with seconds when asked. ``at``: an aware time or its ISO text."""
    from campaigns.hours import VIETNAM

    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(VIETNAM)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return local.strftime(("%d/%m/%Y " if lang == "vi" else "%Y-%m-%d ") + clock)


def actions_line(actions: list[dict[str, Any]], words: dict[str, str]) -> str | None:
    """What people did after the launch, in order, each with when and who: ``14:05 01/12
    tạm dừng (bởi api:trung-tam)``; ``None`` when nobody did anything."""
    if not actions:
        return None
    lang = words["lang"]
    return "; ".join(
        f"{moment(found['at'], lang)} {words.get('act_' + str(found['action']), found['action'])} "
        f"({words['act_by']} {found['by'] or words['launched_by_unknown']})"
        for found in actions
    )


def follow_ups_line(found: dict[str, Any] | None, words: dict[str, str]) -> str | None:
    """A campaign's follow-ups and what they reached together, in a line; ``None``
    without any."""
    if not found:
        return None
    lang = words["lang"]
    each = "; ".join(
        words["follow_up_line"].format(
            campaign=f["campaign"],
            recipients=number(f["recipients"], lang),
            reached=number(f["reached"], lang),
        )
        for f in found["follow_ups"]
    )
    if found["reached_together"] is None:  # numbers replaced by retention, no key given
        return f"{each} · {words['reached_together_unknown']}"
    together = words["reached_together"].format(
        reached=number(found["reached_together"], lang),
        recipients=number(found["recipients"], lang),
        share=percent(found["reached_together"], found["recipients"], lang),
    )
    return f"{each} · {together}"
