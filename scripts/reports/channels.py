"""A multi-channel campaign's section in the reports (HTML and XLSX): per recipient, the
channel that reached them, who is not reached and why, who fell back to the next channel
and why, the doubles, and the money against SMS for everyone
(``ledger.channels.outcomes``). Reached and not reached add up to the recipients."""

from __future__ import annotations

from html import escape
from typing import Any

from scripts.reports.words import number

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Theo người nhận, qua các kênh",
        "recipients": "Người nhận",
        "reached": "Đã đến qua {channel}",
        "not_reached": "Chưa đến: {status}",
        "fell_back": "Chuyển sang kênh sau: {why}",
        "doubles": "Nhận hai lần (kênh trước báo đến sau khi kênh sau đã gửi)",
        "spent": "Chi phí đến nay",
        "sms_for_everyone": "Nếu gửi SMS cho tất cả",
        "saved": "Tiết kiệm",
        "unreachable": "kênh trước không tới được (không có tài khoản trên kênh đó …)",
        "late": "chưa báo đến kịp lúc",
        "failed": "kênh trước thất bại",
        "undelivered": "kênh trước không đến máy",
        "expired": "kênh trước hết hạn",
        "halted": "kênh trước bị dừng (hết hạn mức …)",
        "note": "Mỗi người nhận có một tin cho mỗi kênh; tin của kênh sau chỉ gửi khi kênh "
        "trước không tới được người đó hoặc chưa báo đến kịp lúc.",
    },
    "en": {
        "title": "Per recipient, across channels",
        "recipients": "Recipients",
        "reached": "Reached by {channel}",
        "not_reached": "Not reached: {status}",
        "fell_back": "Fell back to the next channel: {why}",
        "doubles": "Notified twice (a delivery reported after the next channel went)",
        "spent": "Spent so far",
        "sms_for_everyone": "SMS for everyone would cost",
        "saved": "Saved",
        "unreachable": "the channel before cannot reach them (no account on it …)",
        "late": "not delivered in time",
        "failed": "the channel before failed",
        "undelivered": "undelivered on the channel before",
        "expired": "expired on the channel before",
        "halted": "the channel before halted (quota …)",
        "note": "Each recipient has a message per channel; a later channel's is sent only "
        "when the one before could not reach them or did not deliver in time.",
    },
}

#: Which rows are money (formatted with the currency), the rest counts.
MONEY = frozenset({"spent", "sms_for_everyone", "saved"})


def rows(found: dict[str, Any], words: dict[str, str]) -> list[tuple[str, str, Any]]:
    """(key, label, value) in the order the section shows them, labels in ``words``'
    language (a status named as ``words`` names it)."""
    said = WORDS[words["lang"] if words["lang"] in WORDS else "en"]
    out: list[tuple[str, str, Any]] = [("recipients", said["recipients"], found["recipients"])]
    for channel in found["channels"]:
        if found["reached"].get(channel):
            label = said["reached"].format(channel=channel)
            out.append(("reached", label, found["reached"][channel]))
    for status, count in sorted(found["not_reached"].items()):
        label = said["not_reached"].format(status=words.get(status, status))
        out.append(("not_reached", label, count))
    for why, count in sorted(found["fell_back"].items()):
        out.append(("fell_back", said["fell_back"].format(why=said.get(why, why)), count))
    out.append(("doubles", said["doubles"], found["doubles"]))
    for key in ("spent", "sms_for_everyone", "saved"):
        out.append((key, said[key], found[key]))
    return out


def html_section(found: dict[str, Any], words: dict[str, str], currency: str | None) -> list[str]:
    """The section: a table of ``rows``, money in the campaign's currency."""
    lang = words["lang"]
    said = WORDS[lang if lang in WORDS else "en"]
    body = []
    for key, label, value in rows(found, words):
        shown = _money(value, currency, lang) if key in MONEY else number(value, lang)
        body.append(
            f'<tr><th scope="row">{escape(label)}</th><td class="n">{escape(shown)}</td></tr>'
        )
    return [
        f"<h2>{escape(said['title'])}</h2>",
        f'<table class="channels"><tbody>{"".join(body)}</tbody></table>',
        f'<p class="note">{escape(said["note"])}</p>',
    ]


def xlsx_rows(found: dict[str, Any], words: dict[str, str]) -> list[list[Any]]:
    """The same rows for a sheet: a label and a number each (money in the campaign's
    currency, as a number)."""
    said = WORDS[words["lang"] if words["lang"] in WORDS else "en"]
    return [[said["title"], None], *([label, value] for _, label, value in rows(found, words))]


def _money(amount: float | None, currency: str | None, lang: str) -> str:
    if amount is None:
        return "—"
    if (currency or "VND").upper() == "VND":
        return f"{number(round(amount), lang)} ₫"
    return f"{number(amount, lang)} {currency}"
