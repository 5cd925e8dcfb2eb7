"""``loa report --daily DATE``: the day's update across campaigns (``ledger.daily``), as
one HTML page, an XLSX workbook or a CSV of one row per campaign."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO

from campaigns.files import as_text, csv_row, xlsx_append
from campaigns.hours import VIETNAM
from ledger.daily import REPORTED

STANDING = ("delivered", "undelivered", "failed", "expired", "unknown", "cancelled", "sent",
            "sending", "queued")  # fmt: skip


class DayError(ValueError):
    """A ``--daily`` value that names no day to report on."""


def parse_day(text: str, today: date | None = None) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (Vietnam's calendar).

    Raises:
        DayError: not a date, or a day that has not begun in Vietnam.
    """
    today = today or datetime.now(VIETNAM).date()
    words = {"today": today, "yesterday": today - timedelta(days=1)}
    if text.lower() in words:
        return words[text.lower()]
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DayError(f"--daily {text!r}: not a date (YYYY-MM-DD, today or yesterday)") from None
    if day > today:
        raise DayError(f"--daily {text}: that day has not come yet in Vietnam (today is {today})")
    return day


def _campaign_rows(data: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            c["campaign"],
            c["name"],
            c["state"],
            *(c["that_day"].get(s, 0) for s in REPORTED),
            c["recipients"],
            c["delivery_rate_that_day"],
        ]
        for c in data["campaigns"]
    ]


def _headers(words: dict[str, str]) -> list[str]:
    return [
        words["campaign"],
        words["name"],
        words["state"],
        *(f"{words[s]} ({words['that_day'].lower()})" for s in REPORTED),
        words["recipients"],
        words["delivery_rate"],
    ]


def write_csv(data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """One row per campaign active that day, to the open file ``handle``; a name or any
    cell a spreadsheet would run as a formula is neutralised (``campaigns.files``)."""
    with as_text(handle, "utf-8-sig") as text:  # BOM: Excel reads UTF-8
        writer = csv.writer(text)
        writer.writerow(csv_row(_headers(words)))
        writer.writerows(csv_row(row) for row in _campaign_rows(data))


def write_xlsx(data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """The day's workbook to the open file ``handle``, every string a text cell."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    day = book.create_sheet(words["that_day"])
    xlsx_append(day, _headers(words))
    for row in _campaign_rows(data):
        xlsx_append(day, row)
    xlsx_append(day, [words["total"], "", "", *(data["that_day"].get(s, 0) for s in REPORTED)])
    hours = book.create_sheet(words["by_hour_day"][:31])
    xlsx_append(hours, [words["by_hour_day"], words["sent"], words["delivered"]])
    for hour in range(24):
        counts = data["by_hour"].get(str(hour), {})
        xlsx_append(hours, [f"{hour:02d}:00", counts.get("sent", 0), counts.get("delivered", 0)])
    standing = book.create_sheet(words["campaigns_sheet"])
    xlsx_append(standing, [words["campaign"], *(words[s] for s in STANDING), words["total"]])
    for campaign in data["campaigns"]:
        counts = [campaign["standing"].get(s, 0) for s in STANDING]
        xlsx_append(standing, [campaign["campaign"], *counts, sum(counts)])
    book.save(handle)
