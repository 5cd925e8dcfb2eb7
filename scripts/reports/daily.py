"""``loa report --daily DATE``: the day's update across campaigns (``ledger.reports.daily``), as
one HTML page, an XLSX workbook or a CSV of one row per campaign."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO

from campaigns.files import as_text, csv_row, xlsx_append
from campaigns.hours import VIETNAM
from ledger.reports.daily import REPORTED

STANDING = ("delivered", "undelivered", "failed", "expired", "unknown", "unreachable",
            "cancelled", "unneeded", "sent", "sending", "queued", "standby")  # fmt: skip


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
    if day.year < 2000:  # nothing was sent then, and time zones overflow at year 1
        raise DayError(f"--daily {text!r}: a day from 2000 on")
    if day > today:
        raise DayError(f"--daily {text}: that day has not come yet in Vietnam (today is {today})")
    return day


def _campaign_rows(data: dict[str, Any], words: dict[str, str]) -> list[list[Any]]:
    from scripts.reports.words import STATE_WORDS

    states = STATE_WORDS[words["lang"]]
    return [
        [
            c["campaign"],
            c["name"],
            states.get(c["state"], c["state"]),
            *(c["that_day"].get(s, 0) for s in REPORTED),
            c["recipients"],
            c["delivery_rate_that_day"],
        ]
        for c in data["campaigns"]
    ]


def _moved(status: str) -> str:
    """The words' key of a column of the day's moves: "sent" counts what went out that
    day, awaiting a receipt or not since (not the status "sent, awaiting receipt")."""
    return "sent_count" if status == "sent" else status


def _headers(words: dict[str, str], rate_unit: bool) -> list[str]:
    """The columns; ``rate_unit``: the rate's title says it is a number from 0 to 1 (the
    CSV's, which a spreadsheet computes with; the workbook shows it as a percentage)."""
    that_day = words["that_day"].lower()
    return [
        words["campaign"],
        words["name"],
        words["state"],
        *(f"{words[_moved(s)]} ({that_day})" for s in REPORTED),
        words["recipients"],
        f"{words['delivery_rate']} ({that_day}"
        + (f", {words['rate_unit']})" if rate_unit else ")"),
    ]


def write_csv(data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """One row per campaign active that day, to the open file ``handle``; a name or any
    cell a spreadsheet would run as a formula is neutralised (``campaigns.files``). The
    delivery rate is a number from 0 to 1 (``0.9601``), as its column's title says."""
    with as_text(handle, "utf-8-sig") as text:  # BOM: Excel reads UTF-8
        writer = csv.writer(text)
        writer.writerow(csv_row(_headers(words, rate_unit=True)))
        writer.writerows(csv_row(row) for row in _campaign_rows(data, words))


def write_xlsx(data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """The day's workbook to the open file ``handle``, every string a text cell, the
    delivery rate a number shown as a percentage (``96,0 %`` in a Vietnamese Excel); the
    audit log's verdict and the day's signed checkpoint on a sheet of their own."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    day = book.create_sheet(words["that_day"])
    xlsx_append(day, _headers(words, rate_unit=False))
    for *row, rate in _campaign_rows(data, words):
        cell = WriteOnlyCell(day, rate)
        cell.number_format = "0.0%"
        xlsx_append(day, [*row, cell])
    xlsx_append(day, [words["total"], "", "", *(data["that_day"].get(s, 0) for s in REPORTED)])
    hours = book.create_sheet(words["by_hour_day"][:31])
    xlsx_append(hours, [words["by_hour_day"], words["sent_count"], words["delivered"]])
    for hour in range(24):
        counts = data["by_hour"].get(str(hour), {})
        xlsx_append(hours, [f"{hour:02d}:00", counts.get("sent", 0), counts.get("delivered", 0)])
    standing = book.create_sheet(words["campaigns_sheet"])
    xlsx_append(
        standing, [words["campaign"], words["name"], *(words[s] for s in STANDING), words["total"]]
    )
    for campaign in data["campaigns"]:
        counts = [campaign["standing"].get(s, 0) for s in STANDING]
        xlsx_append(standing, [campaign["campaign"], campaign["name"], *counts, sum(counts)])
    for place, goal in enumerate(data.get("goals", []), start=1):  # each goal, its sheets
        from scripts.reports.goal import xlsx_sheets as goal_sheets

        goal_sheets(book, goal, words, f" {place}" if len(data["goals"]) > 1 else "")
    if data.get("audit"):
        from scripts.reports.xlsx import audit_rows

        log = book.create_sheet(words["audit"][:31])
        for row in audit_rows(data["audit"], words):
            xlsx_append(log, row)
    book.save(handle)


def render_html(data: dict[str, Any], words: dict[str, str], audit: dict[str, Any]) -> str:
    """The day's page (``ledger.reports.daily.Daily.as_dict``, with ``generated_at``): each
    campaign by name and id with the state it is really in, its moves that day, a chart
    of the day's hours, where each campaign stands, and the audit log's verdict."""
    from html import escape

    from scripts.reports.charts import hours_chart
    from scripts.reports.html import audit_section, page
    from scripts.reports.words import moment

    campaigns = data["campaigns"]
    sections = [f"<h2>{escape(words['that_day'])}</h2>"]
    if not campaigns:
        sections.append(f"<p>{escape(words['no_activity'])}</p>")
    else:
        sections += [
            _day_table(data, words),
            f'<p class="note">{escape(words["moves_note"])}</p>',
            f"<h2>{escape(words['by_hour_day'])}</h2>",
            hours_chart(data["by_hour"], words),
            f"<h2>{escape(words['standing'])}</h2>",
        ]
        for campaign in campaigns:
            sections += _standing(campaign, words)
    for goal in data.get("goals", []):  # each goal the day's campaigns serve, once
        from scripts.reports.goal import html_section

        sections += html_section(goal, words, daily=True)
    sections += audit_section(audit, words)
    day = moment(f"{data['day']}T12:00:00+07:00", words["lang"]).split(" ")[0]
    return page(f"{words['daily']} {day}", words["report"], sections, words, data["generated_at"])


def _day_table(data: dict[str, Any], words: dict[str, str]) -> str:
    """A row per campaign (its name, its id under it), its recipients, its state, and its
    moves that day."""
    from html import escape

    from scripts.reports.html import scroll, td
    from scripts.reports.words import STATE_WORDS

    lang, campaigns = words["lang"], data["campaigns"]
    head = (
        f'<th class="g">{escape(words["campaign"])}</th>'
        f'<th class="sum">{escape(words["recipients"])}</th>'
        f'<th class="st">{escape(words["state"])}</th>'
        + "".join(f"<th>{escape(words[_moved(s)])}</th>" for s in REPORTED)
    )
    body = "".join(
        f'<tr data-campaign="{escape(c["campaign"])}"><td class="g">{escape(c["name"])}'
        f'<br><code class="id">{escape(c["campaign"])}</code></td>'
        + td(c["recipients"], lang, "sum")
        + f'<td class="st">{escape(STATE_WORDS[lang].get(c["state"], c["state"]))}</td>'
        + "".join(td(c["that_day"].get(s, 0), lang) for s in REPORTED)
        + "</tr>"
        for c in campaigns
    )
    foot = (
        f'<tr class="total"><td class="g">{escape(words["total"])}</td>'
        + td(sum(c["recipients"] for c in campaigns), lang, "sum")
        + "<td></td>"
        + "".join(td(data["that_day"].get(s, 0), lang) for s in REPORTED)
        + "</tr>"
    )
    return scroll(
        f'<table class="campaigns" data-breakdown="that_day"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody><tfoot>{foot}</tfoot></table>",
        len(REPORTED) + 3,
        words,
    )


def _standing(campaign: dict[str, Any], words: dict[str, str]) -> list[str]:
    """Where one campaign stands now: reached of its recipients, a bar, a row per state."""
    from html import escape

    from scripts.reports.charts import stack_bar, swatch
    from scripts.reports.html import scroll, td
    from scripts.reports.words import STATE_WORDS, STATES, number, percent

    lang = words["lang"]
    counts = {s: campaign["standing"][s] for s in STATES if campaign["standing"].get(s)}
    # Recipients, and those reached by any channel (with several, the rows below count
    # messages: one per recipient per channel).
    total, reached = campaign["recipients"], campaign["reached"]
    headline = words["headline"].format(
        reached=number(reached, lang),
        recipients=number(total, lang),
        share=percent(reached, total, lang),
    )
    state = STATE_WORDS[lang].get(campaign["state"], campaign["state"])
    whole = sum(counts.values())  # messages: the recipients, or with channels more
    rows = "".join(
        f'<tr><td class="g">{swatch(s)}{escape(words[s])}</td>'
        + td(n, lang, "", f' data-status="{s}"')
        + f"<td>{escape(percent(n, whole, lang))}</td></tr>"
        for s, n in counts.items()
    )
    label = words["recipients"] if whole == total else words["messages"]
    foot = (
        f'<tr class="total"><td class="g">{escape(label)}</td>'
        + td(whole, lang, "", ' data-status="total"')
        + f"<td>{escape(percent(whole, whole, lang))}</td></tr>"
    )
    head = "".join(f"<th>{escape(words[k])}</th>" for k in ("count", "share"))
    table = (
        f'<table class="summary" data-breakdown="standing" data-campaign="{escape(campaign["campaign"])}">'
        f'<thead><tr><th class="g">{escape(words["state"])}</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody><tfoot>{foot}</tfoot></table>"
    )
    return [
        f"<h3>{escape(campaign['name'])}</h3>",
        f'<p class="muted"><code class="id">{escape(campaign["campaign"])}</code> · {escape(state)}</p>',
        f"<p>{escape(headline)}</p>",
        stack_bar(counts, words),
        scroll(table, 3, words),
    ]
