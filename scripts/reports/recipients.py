"""The recipients in a report: the CSV (``loa report --format csv``) and the XLSX's
``Người nhận`` sheet, one row per recipient with its final state, the number masked.

In Vietnamese (the default) the columns and the statuses are named as the HTML report
names them and the times are Vietnam's, the zone said in the column's title. With
``--lang en`` the CSV keeps the machine form scripts read (``message_id,number,…``, the
statuses as stored: ``delivered`` …), its times ISO 8601 in Vietnam's time with their
offset (``2026-11-30T20:49:49+07:00``); the JSON of ``--json`` is unchanged (UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from scripts.reports.words import STATES

#: The columns in Vietnamese, in ``ledger.recipients_csv.RECIPIENT_COLUMNS`` order.
HEADERS_VI = ("Mã tin", "Số điện thoại (đã che)", "Quốc gia", "Nhà mạng", "Nhà cung cấp",
              "Trạng thái", "Mã lỗi", "Số lần thử gửi", "Gửi lúc (giờ Việt Nam, UTC+7)",
              "Kết quả lúc (giờ Việt Nam, UTC+7)")  # fmt: skip
#: How a time shows in the workbook (the cell stays a date Excel computes with).
XLSX_TIME = {"vi": "dd/mm/yyyy hh:mm:ss", "en": "yyyy-mm-dd hh:mm:ss"}


def headers(words: dict[str, str], workbook: bool = False) -> tuple[str, ...]:
    """The columns' titles in the report's language; in English the machine names
    (``ledger.recipients_csv.RECIPIENT_COLUMNS``), the workbook's times saying their zone (a
    date cell carries no offset)."""
    from ledger.recipients_csv import RECIPIENT_COLUMNS

    if words["lang"] == "vi":
        return HEADERS_VI
    if workbook:
        return (
            *RECIPIENT_COLUMNS[:-2],
            *(f"{c} ({words['zone']})" for c in RECIPIENT_COLUMNS[-2:]),
        )
    return RECIPIENT_COLUMNS


def labels(words: dict[str, str]) -> dict[str, str] | None:
    """Each status as the report names it (``Đã đến máy`` …); ``None`` in English, where
    the statuses stay as stored (``delivered`` …)."""
    return {state: words[state] for state in STATES} if words["lang"] == "vi" else None


def write_csv(engine: Any, handle: BinaryIO, campaign_id: str, words: dict[str, str]) -> None:
    """The recipients' CSV to the open file ``handle`` (a BOM first: Excel reads UTF-8
    then), times in Vietnam (``ledger.recipients_csv.local_time``); on PostgreSQL made by the
    server (``COPY``)."""
    from ledger.recipients_csv import write_recipients

    write_recipients(
        engine, handle, campaign_id, bom=True, header=headers(words), labels=labels(words),
        local=True,
    )  # fmt: skip


def _vietnam(at: datetime) -> datetime:
    """A time as the workbook holds it: Vietnam's wall clock, no zone (Excel has none)."""
    from campaigns.hours import VIETNAM

    return at.astimezone(VIETNAM).replace(tzinfo=None, microsecond=0)


def sheet_rows(
    engine: Any, campaign_id: str, words: dict[str, str], book: Any
) -> Iterator[list[Any]]:
    """The recipients' rows for the workbook ``book`` (``headers(words, workbook=True)``):
    each time a date cell in Vietnam's time, shown the report language's way."""
    from openpyxl.cell import WriteOnlyCell

    from ledger.recipients_csv import recipient_rows

    shape, anchor = XLSX_TIME[words["lang"]], book.worksheets[0]

    def when(at: datetime | str) -> Any:
        if not at:
            return None
        cell = WriteOnlyCell(anchor, at)  # its format is the workbook's, whatever sheet
        cell.number_format = shape
        return cell

    for row in recipient_rows(engine, campaign_id, _vietnam, labels(words)):
        yield [*row[:-2], when(row[-2]), when(row[-1])]
