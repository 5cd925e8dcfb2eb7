"""The campaign report's workbook (``loa report --format xlsx``): a summary sheet (the
campaign, every recipient counted in exactly one state, the totals adding up on the
page), a sheet per breakdown with its totals row, the timeline, the reasons messages did
not arrive, and the recipients (numbers masked). Groups and labels as the HTML report
names them (``scripts.reports.html``)."""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from campaigns.files import xlsx_append
from scripts.reports.words import STATES, group_label, reason_label

EXCEL_ROWS = 1_048_576


def _sheet_title(text: str) -> str:
    """Excel's rules: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", "-", text)[:31]


def _breakdown(
    sheet: Any, words: dict[str, str], key: str, rows: dict[Any, dict[str, int]]
) -> None:
    """A group per row (the hours in their order, others by name), a column per status,
    the total last, and a totals row equal to the summary's."""
    xlsx_append(sheet, [words["group"], *(words[s] for s in STATES), words["total"]])
    ordered = rows.items()
    if key != "by_hour":  # by name, the blank group last (the hours come in order)
        ordered = sorted(ordered, key=lambda item: (not item[0], str(item[0]).casefold()))
    groups = [(group_label(key, g, words), counts) for g, counts in ordered]
    for group, counts in groups:
        values = [counts.get(s, 0) for s in STATES]
        xlsx_append(sheet, [group, *values, sum(values)])
    totals = [sum(counts.get(s, 0) for _, counts in groups) for s in STATES]
    xlsx_append(sheet, [words["total"], *totals, sum(totals)])


def _number_cell(sheet: Any, value: float | None, shape: str) -> Any:
    """A number kept a number, shown as ``shape`` (Excel's format: the reader's own
    thousands and decimal marks)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value)
    cell.number_format = shape
    return cell


def _context_rows(data: dict[str, Any], words: dict[str, str]) -> list[list[Any]]:
    """What the HTML report says about the campaign before its figures, as rows."""
    from scripts.reports.html import sending_hours
    from scripts.reports.words import (
        STATE_WORDS,
        actions_line,
        follow_ups_line,
        moment,
        span,
        state_reason,
    )

    lang, zone = words["lang"], f"({words['zone']})"
    state = STATE_WORDS[lang].get(data["state"], data["state"])
    if data["state_since"]:
        state += f" · {words['since']} {moment(data['state_since'], lang)} {zone}"
    if data["state_reason"] and data["state"] != "completed":
        state += f" — {state_reason(data['state_reason'], words['lang'])}"
    stripped = set(data.get("khong_dau") or ())
    sent = (
        f"{span(data['first_sent'], data['last_sent'], lang)} {zone}"
        if data["first_sent"]
        else words["nothing_sent"]
    )
    rows = [
        [words["campaign_id"], data["campaign"]],
        [words["name"], data["name"]],
        [words["state"], state],
        [words["category"], words.get(data["category"], data["category"])],
        [words["brandname"], data["brandname"]],
        *(
            [
                f"{words['message_text']} ({code})"
                + (f" {words['khong_dau']}" if code in stripped else ""),
                text,
            ]
            for code, text in data["messages"].items()
        ),
        [words["launched"], f"{moment(data['created_at'], lang)} {zone}"],
        [words["launched_by"], data["launched_by"] or words["launched_by_unknown"]],
    ]
    if follow_ups_line(data.get("follow_ups"), words):
        rows.append([words["follow_ups"], follow_ups_line(data["follow_ups"], words)])
    if actions_line(data.get("actions", []), words):
        rows.append([words["actions"], actions_line(data["actions"], words)])
    if data["start_at"]:
        rows.append([words["start_at"], f"{moment(data['start_at'], lang)} {zone}"])
    rows += [
        [words["sending_hours"], sending_hours(data, words)],
        [words["sent_between"], sent],
        [words["valid_until"], f"{moment(data['valid_until'], lang)} {zone}"],
        [words["list_file"], data["list_name"]],
        [words["generated"], f"{moment(data['generated_at'], lang)} {zone}"],
    ]
    return rows


def audit_rows(audit: dict[str, Any], words: dict[str, str]) -> list[list[Any]]:
    """The audit log's rows of a workbook: the last verdict and what it named altered,
    the signed checkpoint (a line of its note a row, so that copying the column gives
    the note as signed, without the quotes a spreadsheet puts around a cell of several
    lines) or the word that the log is unsigned, and the chain's head."""
    from scripts.reports.words import moment

    rows: list[list[Any]] = []
    verified = audit["verified"]
    if verified is None:
        rows.append([words["audit"], words["audit_never"]])
    else:
        verdict = words["audit_ok"] if verified["ok"] else words["audit_broken"]
        when = f"{moment(verified['at'], words['lang'])} ({words['zone']})"
        rows.append([words["audit"], f"{verdict} ({words['audit_verified_at']} {when})"])
        for problem in ((verified.get("broken") or {}).get("problems") or [])[:10]:
            rows.append(["", problem])  # what was altered, as verify named it
    # Rows of their own: the verdict's row above is read by its label.
    if audit.get("checkpoint"):
        lines = audit["checkpoint"].rstrip("\n").split("\n")
        rows += [[words["audit_signature"] if i == 0 else "", line] for i, line in enumerate(lines)]
    elif not audit.get("signed", True):
        rows.append([words["audit_signature"], words["audit_unsigned"]])
    if audit["head_seq"]:
        rows.append([words["audit_head"], f"#{audit['head_seq']} {audit['head']}"])
    else:  # the chain's start, all zeros: no seal to compare with
        rows.append([words["audit_head"], words["audit_no_seal"]])
    return rows


def write_xlsx(engine: Any, data: dict[str, Any], words: dict[str, str], handle: BinaryIO) -> None:
    """The workbook, every string in it a text cell (``campaigns.files.xlsx_append``):
    a district or an error code such as ``=HYPERLINK(…)`` is shown, never run."""
    from openpyxl import Workbook

    from scripts.reports.recipients import headers, sheet_rows

    book = Workbook(write_only=True)
    summary = book.create_sheet(words["summary"])
    # With several channels the statuses count messages, one per recipient per channel.
    recipients = data.get("all_channels", data["recipients"])
    xlsx_append(summary, [words["item"], words["count"], words["share"]])
    for key in ("rows_read", "rejected", "duplicates", "suppressed", "recipients"):
        xlsx_append(summary, [words[key], data[key]])
        if key == "rejected":
            for reason, count in data["rejected_by_reason"].items():
                xlsx_append(summary, [f"    {reason_label(reason, words['lang'])}", count])
    if "all_channels" in data:
        xlsx_append(summary, [words["messages"], data["all_channels"]])
    for state in STATES:
        count = data["statuses"].get(state, 0)
        share = count / recipients if recipients else None
        xlsx_append(summary, [f"  {words[state]}", count, _number_cell(summary, share, "0.0%")])
    xlsx_append(summary, [words["parts_billed"], data["parts_billed"]])
    currency = (data["currency"] or "VND").upper()
    shape = '#,##0 "₫"' if currency == "VND" else f'#,##0.00 "{currency}"'
    cost = data["cost"]
    cost = round(cost) if cost is not None and currency == "VND" else cost
    xlsx_append(summary, [words["cost"], _number_cell(summary, cost, shape)])
    xlsx_append(
        summary, [words["delivery_rate"], _number_cell(summary, data["delivery_rate"], "0.0%")]
    )
    if data.get("channels"):  # several channels: the recipients across them
        from scripts.reports.channels import xlsx_rows

        for row in xlsx_rows(data["channels"], words):
            xlsx_append(summary, row)
    for row in audit_rows(data["audit"], words):
        xlsx_append(summary, row)
    for row in _context_rows(data, words):
        xlsx_append(summary, row)
    sheets = [("by_carrier", data["by_carrier"]), ("by_provider", data["by_provider"])]
    sheets.append(("by_hour", data["by_hour"]))
    if data["by"]:
        sheets.insert(0, ("by_column", data["by_column"]))
    for key, rows in sheets:
        title = f"{words[key]} {data['by']}" if key == "by_column" else words[key]
        _breakdown(book.create_sheet(_sheet_title(title)), words, key, rows)
    if data.get("goal"):  # the goal, district by district (``scripts.reports.goal``)
        from scripts.reports.goal import xlsx_sheets as goal_sheets

        goal_sheets(book, data["goal"], words)
    if data["timeline"]:
        _timeline_sheet(book.create_sheet(words["timeline_sheet"]), words, data["timeline"])
    failures = book.create_sheet(words["failures"])
    xlsx_append(
        failures,
        [words["provider"], words["code"], words["meaning"], words["count"], words["outcome"]],
    )
    for failure in data["failures"]:
        xlsx_append(
            failures,
            [
                failure["provider"],
                failure["code"],
                failure["meaning"],
                failure["recipients"],
                words[failure["status"]],
            ],
        )
    xlsx_append(failures, [words["total"], "", "", sum(f["recipients"] for f in data["failures"])])
    # Excel holds 1,048,576 rows a sheet: a larger campaign's recipients go on in more.
    for n, row in enumerate(sheet_rows(engine, data["campaign"], words, book)):
        if n % (EXCEL_ROWS - 1) == 0:
            part = n // (EXCEL_ROWS - 1) + 1
            title = words["recipients_sheet"] + (f" {part}" if part > 1 else "")
            recipients_sheet = book.create_sheet(title)
            xlsx_append(recipients_sheet, headers(words, workbook=True))
        xlsx_append(recipients_sheet, row)
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
            words["sent_count"],
            words["delivered"],
            *(f"Σ {words[k]}" for k in ("sent_count", "delivered")),
        ],
    )
    total_sent = total_delivered = 0
    for n, (sent, delivered) in enumerate(
        zip(timeline["sent"], timeline["delivered"], strict=True)
    ):
        total_sent, total_delivered = total_sent + sent, total_delivered + delivered
        moment = (start + timedelta(seconds=n * step)).astimezone(VIETNAM).replace(tzinfo=None)
        xlsx_append(sheet, [moment, sent, delivered, total_sent, total_delivered])
