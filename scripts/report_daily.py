"""``loa report --daily DATE``: the day's update across campaigns (``ledger.daily``), as
one HTML page, an XLSX workbook or a CSV of one row per campaign."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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


def write_csv(data: dict[str, Any], words: dict[str, str], path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel reads UTF-8
        writer = csv.writer(handle)
        writer.writerow(_headers(words))
        writer.writerows(_campaign_rows(data))


def write_xlsx(data: dict[str, Any], words: dict[str, str], path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    day = book.create_sheet(words["that_day"])
    day.append(_headers(words))
    for row in _campaign_rows(data):
        day.append(row)
    day.append([words["total"], "", "", *(data["that_day"].get(s, 0) for s in REPORTED)])
    hours = book.create_sheet(words["by_hour_day"][:31])
    hours.append([words["by_hour_day"], words["sent"], words["delivered"]])
    for hour in range(24):
        counts = data["by_hour"].get(str(hour), {})
        hours.append([f"{hour:02d}:00", counts.get("sent", 0), counts.get("delivered", 0)])
    standing = book.create_sheet(words["campaigns_sheet"])
    standing.append([words["campaign"], *(words[s] for s in STANDING), words["total"]])
    for campaign in data["campaigns"]:
        counts = [campaign["standing"].get(s, 0) for s in STANDING]
        standing.append([campaign["campaign"], *counts, sum(counts)])
    book.save(path)
