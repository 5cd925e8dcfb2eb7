"""Reading recipient lists: CSV, TSV and XLSX, streamed row by row, never loaded whole.

``open_list`` reads the header (and, for text files, decides the encoding) up front, so a
file without a phone column, in an unclear encoding or empty fails before anything else
happens. ``RecipientList.rows()`` then streams the data rows. The phone column is found by
its header (Vietnamese or English, with or without diacritics) unless named; every other
column travels with the row (``ListRow.values``, in ``RecipientList.columns`` order), so
templates and reports can use names, districts and languages.
"""

from __future__ import annotations

import codecs
import csv
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from campaigns.encoding import EncodingUnclear, detect

#: Header names (folded: lower case, no diacritics, letters and digits only) taken as the phone.
PHONE_HEADERS = (
    "phone", "phonenumber", "mobile", "msisdn", "sodienthoai", "sdt", "dienthoai", "sodt",
    "didong", "sodidong", "tel", "telephone", "mobilephone", "sothuebao",
)  # fmt: skip
TEXT_FORMATS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
EXCEL_FORMATS = {".xlsx", ".xlsm"}


class ListError(ValueError):
    """A recipient list that cannot be read; the message names the file (and row)."""


class ListRow(NamedTuple):
    """One data row: its 1-based row number in the file (the header is row 1), the raw
    phone cell, the other cells in ``RecipientList.columns`` order (NFC), and why the row
    cannot be used as read (``EXTRA_CELLS``), empty when it can."""

    row: int
    phone: str
    values: tuple[str, ...]
    problem: str = ""


#: A row with filled cells beyond the header's columns: they have no name, so they could
#: only be dropped; the row is rejected instead (the other rows go on), and the rejects
#: file shows which one.
EXTRA_CELLS = "extra_cells"


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
    if any(sum(ch.isdigit() for ch in header) >= 7 for header in headers):
        # The first row is a recipient, not a header: its cells are personal data and
        # are not repeated in an error that may end up in a log or a ticket.
        raise ValueError(
            "the first row looks like a recipient (a cell holds a phone number), not a "
            "header: add a first row naming the columns (e.g. Họ tên,Số điện thoại)"
        )
    raise ValueError(
        f"no phone column found among {', '.join(headers) or 'no headers'}; "
        "name it with --phone-column"
    )


_NFC = partial(unicodedata.normalize, "NFC")


def _nfc(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else _cell_text(value)
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _cell_text(value: object) -> str:
    # Excel stores a number typed without a leading 0 as a float: 912345678.0 -> "912345678".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class RecipientList:
    """An opened list: its format, encoding, header and phone column."""

    path: Path
    format: str  # "csv", "tsv", "xlsx"
    encoding: str | None
    headers: list[str]
    phone_index: int
    delimiter: str | None = None
    sheet: str | None = None

    @property
    def phone_header(self) -> str:
        return self.headers[self.phone_index]

    @property
    def columns(self) -> list[str]:
        """The headers of ``ListRow.values``: every column but the phone."""
        return [h for i, h in enumerate(self.headers) if i != self.phone_index]

    def rows(self) -> Iterator[ListRow]:
        """Stream the data rows. Blank lines are skipped, not counted.

        Raises:
            ListError: a line that cannot be decoded or parsed, naming the row; or a
                list with a header and no data row at all.
        """
        empty = True
        for row in self._excel_rows() if self.format == "xlsx" else self._text_rows():
            empty = False
            yield row
        if empty:
            raise ListError(f"{self.path}: the list has a header but no rows")

    def _split(self, row_number: int, cells: list[str]) -> ListRow:
        index, width = self.phone_index, len(self.headers)
        problem = ""
        if len(cells) != width:  # ragged row: pad a short one, never cut data off
            if any(cell.strip() for cell in cells[width:]):
                problem = EXTRA_CELLS
            cells = (cells + [""] * width)[:width]
        return ListRow(
            row_number,
            cells[index],
            tuple(map(_NFC, cells[:index] + cells[index + 1 :])),
            problem,
        )

    def _text_rows(self) -> Iterator[ListRow]:
        with self.path.open(encoding=self.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter or ",")
            try:
                next(reader, None)  # the header, already read
                split, index = self._split, self.phone_index
                for cells in reader:
                    # Blank lines are skipped; a filled phone cell settles it cheaply.
                    if (len(cells) > index and cells[index].strip()) or "".join(cells).strip():
                        yield split(reader.line_num, cells)
            except UnicodeDecodeError as exc:
                line = _first_undecodable_line(self.path, self.encoding or "utf-8")
                raise ListError(
                    f"{self.path}: row {line} is not valid {self.encoding} "
                    f"({exc.reason}); name the file's encoding with --encoding"
                ) from None
            except csv.Error as exc:
                raise ListError(f"{self.path}: row {reader.line_num}: {exc}") from None

    def _excel_rows(self) -> Iterator[ListRow]:
        book = _open_workbook(self.path)
        try:
            sheet = book[self.sheet] if self.sheet else book.worksheets[0]
            cells_iter = sheet.iter_rows(values_only=True)
            next(cells_iter, None)
            for number, cells in enumerate(cells_iter, start=2):
                texts = ["" if c is None else _cell_text(c) for c in cells]
                if "".join(texts).strip():
                    yield self._split(number, texts)
        finally:
            book.close()


def _first_undecodable_line(path: Path, encoding: str) -> int | str:
    """The line a decoding error is on. The text reader decodes ahead of the CSV parser,
    so on the (rare) error path the file is read again, line by line, to say exactly."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return number
    return "?"


#: An XLSX is a zip of XML parts; openpyxl reads its shared strings into memory whole.
#: Excel's own ceiling is 1,048,576 rows: a real list stays far below these, while a
#: crafted one (a 1 MB file whose strings unpack to gigabytes) is refused before parsing.
XLSX_MAX_UNPACKED = 2 << 30  # bytes, every part together
XLSX_MAX_PART_RATIO = 100  # unpacked / packed, for a part over XLSX_RATIO_FROM bytes
XLSX_RATIO_FROM = 16 << 20


def _check_package(path: Path) -> None:
    """Refuse a workbook that would unpack to far more than any list (a zip bomb).

    Raises:
        ListError: naming the file and the part.
    """
    try:
        with zipfile.ZipFile(path) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ListError(f"{path}: not a readable XLSX workbook ({exc})") from None
    if sum(part.file_size for part in parts) > XLSX_MAX_UNPACKED:
        raise ListError(f"{path}: the workbook unpacks to more than 2 GB: not a list Loa reads")
    for part in parts:
        packed = max(part.compress_size, 1)
        if part.file_size > XLSX_RATIO_FROM and part.file_size / packed > XLSX_MAX_PART_RATIO:
            raise ListError(
                f"{path}: part {part.filename} unpacks {part.file_size // packed}-fold "
                f"(to {part.file_size >> 20} MB): refused as a zip bomb; save the list again "
                "from Excel or as CSV"
            )


def _open_workbook(path: Path):
    from openpyxl import load_workbook  # imported here: CSV users never pay for it

    _check_package(path)
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ListError(f"{path}: not a readable XLSX workbook ({exc})") from None


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in ("\t", ";", ",", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_list(
    path: Path,
    *,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> RecipientList:
    """Open a recipient list and read its header.

    Parameters:
        phone_column: the phone column's header, when it cannot be found by name.
        encoding: the text encoding, when it cannot be told (``utf-8``, ``cp1258`` …).
        sheet: the XLSX sheet to read (default: the first).

    Raises:
        ListError: missing, unreadable, unknown format, unclear encoding, no header,
            no phone column; the message starts with the file's path.
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ListError(f"{path}: cannot read recipient list (no such file)")
    if suffix in EXCEL_FORMATS:
        book = _open_workbook(path)
        try:
            if sheet and sheet not in book.sheetnames:
                raise ListError(f"{path}: no sheet {sheet!r}; it has {', '.join(book.sheetnames)}")
            first = book[sheet] if sheet else book.worksheets[0]
            header_cells = next(first.iter_rows(max_row=1, values_only=True), ())
        finally:
            book.close()
        headers = [_nfc(c).strip() for c in header_cells]
        while headers and not headers[-1]:
            headers.pop()
        return _with_phone(
            RecipientList(path, "xlsx", None, headers, -1, sheet=sheet), phone_column
        )
    if suffix not in TEXT_FORMATS:
        known = ", ".join(sorted([*TEXT_FORMATS, *EXCEL_FORMATS]))
        raise ListError(f"{path}: unknown list format {suffix or '(none)'!r}; use one of {known}")
    try:
        codec = encoding or detect(path)
        codecs_ok = codec.lower()
        with path.open(encoding=codecs_ok, newline="") as handle:
            first_line = handle.readline()
    except EncodingUnclear as exc:
        raise ListError(f"{path}: {exc}") from None
    except LookupError:
        raise ListError(f"{path}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise ListError(
            f"{path}: the header is not valid {codec} ({exc.reason}); name the encoding with --encoding"
        ) from None
    except OSError as exc:
        raise ListError(f"{path}: cannot read recipient list ({exc.strerror})") from None
    if not first_line.strip():
        raise ListError(f"{path}: empty file, expected a header row")
    delimiter = TEXT_FORMATS[suffix] or _sniff_delimiter(first_line)
    if suffix == ".csv" and first_line.count(";") > first_line.count(","):
        delimiter = ";"  # what Excel writes where the comma is the decimal mark (vi-VN)
    headers = [_nfc(h).strip() for h in next(csv.reader([first_line], delimiter=delimiter))]
    fmt = "tsv" if delimiter == "\t" else "csv"
    opened = RecipientList(path, fmt, codec, headers, -1, delimiter=delimiter)
    return _with_phone(opened, phone_column)


def _with_phone(opened: RecipientList, phone_column: str | None) -> RecipientList:
    if not opened.headers:
        raise ListError(f"{opened.path}: empty file, expected a header row")
    try:
        opened.phone_index = find_phone_column(opened.headers, phone_column)
    except ValueError as exc:
        raise ListError(f"{opened.path}: {exc}") from None
    return opened
