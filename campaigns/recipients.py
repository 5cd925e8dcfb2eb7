"""Reading recipient lists: CSV files streamed row by row, never loaded whole.

The phone column is found by its header (Vietnamese or English, with or without
diacritics) unless named explicitly; every other column travels with the row, so a
``language`` column picks the message text and later a ``district`` column feeds reports.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Header names (folded: lower case, no diacritics, no spaces or '_') taken as the phone.
PHONE_HEADERS = (
    "phone",
    "phonenumber",
    "mobile",
    "msisdn",
    "sodienthoai",
    "sdt",
    "dienthoai",
    "sodt",
    "didong",
    "tel",
)


class ListError(ValueError):
    """A recipient list that cannot be read; the message names the file (and row)."""


@dataclass(frozen=True, slots=True)
class ListRow:
    """One data row: its 1-based line number in the file (header = 1), the raw phone cell,
    and the other columns by header."""

    row: int
    phone: str
    fields: dict[str, str] = field(default_factory=dict)


def fold(header: str) -> str:
    """``Số điện thoại`` -> ``sodienthoai``: how headers are compared."""
    text = unicodedata.normalize("NFD", header.strip().lower()).replace("đ", "d")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return "".join(ch for ch in text if ch.isalnum())


def find_phone_column(headers: list[str], wanted: str | None = None) -> int:
    """Index of the phone column: ``wanted`` if given (by name), else the first header
    that folds to a known phone name. Raises ``ValueError`` naming the headers seen."""
    folded = [fold(h) for h in headers]
    if wanted is not None:
        if fold(wanted) in folded:
            return folded.index(fold(wanted))
        raise ValueError(f"no column {wanted!r}; the header has {', '.join(headers)}")
    for name in PHONE_HEADERS:
        if name in folded:
            return folded.index(name)
    raise ValueError(
        f"no phone column found among {', '.join(headers)}; name it with --phone-column"
    )


def read_list(path: Path, phone_column: str | None = None) -> Iterator[ListRow]:
    """Stream the rows of a UTF-8 CSV file (a BOM is fine).

    Raises:
        ListError: the file is missing or unreadable, is not UTF-8, has no header or no
            phone column; raised before the first row is yielded where it can be.
    """
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ListError(f"{path}: cannot read recipient list ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            headers = next(reader, None)
            if not headers:
                raise ListError(f"{path}: empty file, expected a header row")
            try:
                index = find_phone_column(headers, phone_column)
            except ValueError as exc:
                raise ListError(f"{path}: {exc}") from None
            names = [unicodedata.normalize("NFC", h.strip()) for h in headers]
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line: not a recipient, not an error
                line = reader.line_num
                phone = row[index] if index < len(row) else ""
                fields = {
                    names[i]: unicodedata.normalize("NFC", cell)
                    for i, cell in enumerate(row)
                    if i != index and i < len(names)
                }
                yield ListRow(row=line, phone=phone, fields=fields)
        except UnicodeDecodeError as exc:
            raise ListError(
                f"{path}: not UTF-8 near line {reader.line_num + 1} ({exc.reason})"
            ) from None
        except csv.Error as exc:
            raise ListError(f"{path}: line {reader.line_num}: {exc}") from None
