"""How values read for people, in Vietnam: counts ``1.234.567``, decimals ``12,5``,
shares ``96,1 %``, money ``2.540.300 ₫``, times ``07:00 01/12/2026`` in Vietnam's time
with the zone named, durations ``3 giờ 5 phút``; nothing is ``—``, yes and no are words.
No Python repr (``None``, ``True``, ``{'a': 1}``) ever reaches a person.

Light on purpose (the standard library only): every ``loa`` command may import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

NOTHING = "—"
YES, NO = "có · yes", "không · no"

#: A campaign's state, as ``loa campaign status`` shows it.
STATES: dict[str, str] = {
    "running": "đang chạy · running",
    "completed": "hoàn tất · completed",
    "paused": "tạm dừng · paused",
    "halted": "bị dừng · halted",
    "cancelled": "đã huỷ · cancelled",
    "scheduled": "đã hẹn giờ · scheduled",
}

#: What a campaign waits for (``ledger.waiting.REASONS``).
WAITING: dict[str, str] = {
    "scheduled": "chờ giờ bắt đầu · waiting for its start time",
    "paused": "tạm dừng · paused",
    "validity": "hết hiệu lực · validity over",
    "sending_hours": "ngoài giờ gửi · outside its sending hours",
    "provider_halted": "nhà cung cấp bị dừng · provider halted",
    "cooldown": "nhà cung cấp đang nghỉ · provider cooling down",
    "fallback": "kênh sau chờ kênh trước · the next channel waits for the one before",
    "receipts": "chờ báo cáo phát · waiting for delivery receipts",
}

#: Loa's own sentences for why a campaign waits (``ledger.waiting``), in Vietnamese, said
#: before the English; a provider's or an operator's words are shown as they came.
WHY: dict[str, str] = {
    "launched to start later (--at)": "khởi chạy để bắt đầu sau (--at)",
    "paused by an operator": "tạm dừng bởi người vận hành",
    "nothing left to send; a message with no receipt by then becomes unknown": (
        "không còn tin để gửi; tin chưa có báo cáo phát đến lúc đó thành không rõ"
    ),
    "the validity is over: what is still queued expires unsent": (
        "đã hết hiệu lực: tin còn chờ sẽ hết hạn mà không gửi"
    ),
    "the provider said it is down or overloaded (5xx, 429): every worker waits": (
        "nhà cung cấp báo đang lỗi hoặc quá tải (5xx, 429): mọi worker đều chờ"
    ),
    "the next channel (SMS) waits for the channel before: sent when it cannot reach a "
    "person or has not delivered within its window": (
        "kênh sau (SMS) chờ kênh trước: gửi khi kênh trước không tới được người nhận hoặc "
        "chưa báo đến trong thời hạn chờ"
    ),
}
_HOURS = re.compile(r"sending hours (?P<window>\S+) \(Vietnam time\)(?P<rest>.*)")


def why_words(why: str) -> str:
    """A waiting reason as ``Vietnamese · English`` when it is one of Loa's own."""
    if why in WHY:
        return f"{WHY[why]} · {why}"
    hours = _HOURS.fullmatch(why)
    if hours is not None:
        vi = f"khung giờ gửi {hours['window']} (giờ Việt Nam)"
        if hours["rest"]:
            vi += "; hết hiệu lực trước giờ mở: tin còn lại sẽ hết hạn"
        return f"{vi} · {why}"
    return why


#: The extra lines commands print under a campaign's table.
EXTRAS: dict[str, str] = {
    "launched": "Khởi chạy mới · launched",
    "list_ignored": "Danh sách bị bỏ qua · list ignored",
    "spec_ignored": "Thay đổi tệp chiến dịch bị bỏ qua · campaign file changes ignored",
    "batches_enqueued": "Lô đưa vào hàng đợi · batches queued",
    "ledger": "Sổ cái · ledger",
    "seconds": "Thời gian (giây) · seconds",
    "action": "Thao tác · action",
    "changed": "Đã thay đổi · changed",
    "cancelled": "Đã huỷ · cancelled",
    "still_sending": "Worker đang giữ, vẫn sẽ gửi và ghi kết quả · held by workers: still "
    "sent and settled",
    "already": "Như cũ · already so",
    "state": "Trạng thái · state",
}

#: ``loa campaign pause|resume|cancel``'s action, in words.
ACTIONS: dict[str, str] = {
    "pause": "tạm dừng · pause",
    "resume": "tiếp tục · resume",
    "cancel": "huỷ · cancel",
}


def count(number: int | float) -> str:
    """A whole number with dots between thousands: ``1.234.567``."""
    return f"{round(number):,}".replace(",", ".")


def decimal(number: float, places: int = 1) -> str:
    """A decimal with a comma and dots between thousands: ``1.234,5``."""
    text = f"{number:,.{places}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def percent(share: float, places: int = 1) -> str:
    """A share (0..1) as ``96,1 %``."""
    return f"{decimal(share * 100, places)} %"


def money(amount: float | None, currency: str | None) -> str:
    """``2.540.300 ₫`` for đồng (no decimals), ``12,50 USD`` otherwise; ``—`` unknown."""
    if amount is None:
        return NOTHING
    if (currency or "VND").upper() == "VND":
        return f"{count(amount)} ₫"
    return f"{decimal(amount, 2)} {currency}"


def rate(per_second: float | None, unit: str = "tin") -> str:
    """``12,5 tin/giây``; ``—`` unknown."""
    if per_second is None:
        return NOTHING
    places = 2 if 0 < per_second < 10 else 1
    return f"{decimal(per_second, places)} {unit}/giây"


def duration(seconds: float | None) -> str:
    """``2 ngày 3 giờ``, ``3 giờ 5 phút``, ``4 phút 10 giây``, ``45 giây``; ``—``."""
    if seconds is None:
        return NOTHING
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} ngày" + (f" {hours} giờ" if hours else "")
    if hours:
        return f"{hours} giờ" + (f" {minutes} phút" if minutes else "")
    if minutes:
        return f"{minutes} phút" + (f" {secs} giây" if secs else "")
    return f"{secs} giây"


def moment(when: datetime | str | None) -> str:
    """``07:00 01/12/2026 giờ Việt Nam (UTC+07:00)``; ``—`` unknown. Takes an aware time
    or its ISO 8601 text."""
    if when is None:
        return NOTHING
    from campaigns.hours import VIETNAM

    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    local = when.astimezone(VIETNAM)
    clock = "%H:%M:%S" if local.second else "%H:%M"  # a cooldown's end: to the second
    return f"{local.strftime(clock)} {local:%d/%m/%Y} giờ Việt Nam (UTC+07:00)"


def value(thing: Any) -> str:
    """Anything as a person reads it: no ``None``, ``True`` or ``{'…'}``."""
    if thing is None:
        return NOTHING
    if isinstance(thing, bool):
        return YES if thing else NO
    if isinstance(thing, int):
        return count(thing)
    if isinstance(thing, float):
        return count(thing) if thing.is_integer() else decimal(thing, 2)
    if isinstance(thing, datetime):
        return moment(thing)
    if isinstance(thing, Mapping):
        return "; ".join(f"{key}: {value(item)}" for key, item in thing.items()) or NOTHING
    if isinstance(thing, list | tuple | set | frozenset):
        return ", ".join(value(item) for item in thing) or NOTHING
    return str(thing)


def setting(thing: Any) -> str:
    """A setting as it would be written in the environment: ``true``, ``false``, lists
    comma-separated, unset ``—``."""
    if isinstance(thing, bool):
        return "true" if thing else "false"
    if isinstance(thing, list | tuple):
        return ", ".join(str(item) for item in thing) or NOTHING
    return NOTHING if thing is None else str(thing)


def waiting_lines(waiting: Mapping[str, Any] | None, now: datetime | None = None) -> list[str]:
    """What a campaign waits for (``WaitingFor.as_dict()``), as lines of rich markup:
    the reason, its cause, until or since when (Vietnam's time, the zone named, and how
    long from ``now``), what lifts it and how many messages wait. No line when it waits
    for nothing."""
    if not waiting:
        return []
    from rich.markup import escape

    reason = waiting["reason"]
    lines = [f"[bold yellow]Đang chờ · waiting for:[/] {WAITING.get(reason, reason)}"]
    if waiting.get("why"):
        lines.append(f"  vì · why: {escape(why_words(str(waiting['why'])))}")
    if waiting.get("until"):
        left = ""
        if now is not None:
            left = f", còn · in {duration((datetime.fromisoformat(waiting['until']) - now).total_seconds())}"
        lines.append(f"  đến · until: {moment(waiting['until'])}{left}")
    if waiting.get("since"):
        lines.append(f"  từ · since: {moment(waiting['since'])}")
    if waiting.get("lifted_by"):
        lines.append(f"  gỡ bằng · lifted by: [bold]{escape(str(waiting['lifted_by']))}[/]")
    if waiting.get("messages"):
        lines.append(f"  tin đang chờ · messages waiting: {count(waiting['messages'])}")
    return lines


#: Control characters (C0 but tab and newline, DEL, C1) and bidirectional embeddings,
#: overrides and isolates: in a campaign name or any text from outside, an escape
#: sequence would drive the operator's terminal (clear it, retitle it) and an override
#: would reorder what they read.
_UNPRINTABLE = dict.fromkeys(
    [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F),
     *range(0x2066, 0x206A)],
    "\ufffd",
)  # fmt: skip


def plain(text: str) -> str:
    """``text`` safe to print on a terminal: each control character a U+FFFD."""
    return text.translate(_UNPRINTABLE)
