"""Reading recipient lists: CSV, TSV and XLSX, streamed row by row, never loaded whole.

``open_list`` reads the header (and, for text files, decides the encoding) up front, so a
file without a phone column, in an unclear encoding or empty fails before anything else
happens. ``RecipientList.rows()`` then streams the data rows. The phone column is found by
its header (Vietnamese or English, with or without diacritics) unless named; every other
column travels with the row (``ListRow.values``, in ``RecipientList.columns`` order), so
templates and reports can use names, districts and languages.
"""

from __future__ import annotations

import csv
import itertools
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from campaigns.encoding import EncodingUnclear, detect
from campaigns.list_damage import (
    DECIMAL_COMMA_ZERO,
    ESCAPE_UNDECODABLE,
    LINE_BREAK,
    End,
    Escaped,
    first_undecodable_line,
    is_number,
    is_utf8,
    mend,
    undecodable,
)
from campaigns.workbook import open_workbook

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
#: A row the CSV reader cannot read (a cell over ``csv.field_size_limit()``, 128 KB): no
#: list holds such a cell, so the row is rejected and the reader goes on at the next line.
UNREADABLE_ROW = "unreadable_row"
#: A row of a UTF-8 list holding bytes UTF-8 cannot read (a damaged byte, a line pasted
#: from another encoding): rejected, its cells shown with U+FFFD where the bytes were.
BAD_ENCODING = "bad_encoding"
#: Rows of a UTF-8 list that may be ``BAD_ENCODING`` before the list stops: more than
#: this many, and more than one in ``BAD_ENCODING_PER`` of the rows so far, is a file in
#: another encoding (its first rows plain ASCII), which ``--encoding`` reads whole.
BAD_ENCODING_ROWS = 10
BAD_ENCODING_PER = 1000
#: Lines one quoted cell may span: an address or a note takes a few, while a quote
#: that is never closed takes every line after it as one cell, rows and all.
MAX_CELL_LINES = 50


def fold(header: str) -> str:
    """``Số điện thoại`` -> ``sodienthoai``: how headers are compared."""
    text = unicodedata.normalize("NFD", header.strip().lower()).replace("đ", "d")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return "".join(ch for ch in text if ch.isalnum())


def find_phone_column(
    headers: list[str], wanted: str | None = None, names: Sequence[str] = PHONE_HEADERS
) -> int:
    """Index of the phone column: ``wanted`` if given (by name), else the first header
    that folds to one of ``names`` (in their order). Raises ``ValueError`` naming the
    headers seen."""
    folded = [fold(h) for h in headers]
    if wanted is not None:
        if fold(wanted) in folded:
            return folded.index(fold(wanted))
        raise ValueError(f"no column {wanted!r}; the header has {', '.join(headers)}")
    for name in names:
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

    def _split_decimal_comma(self, row_number: int, cells: list[str]) -> ListRow:
        """``_split`` for a ``;`` file, the one Excel writes where the comma is the
        decimal mark (vi-VN): a number it kept as a number with a zero fraction,
        ``912345678,0``, is the whole number (``912345678.0`` in a comma file is taken
        by ``campaigns.phones``); any other fraction is left for the phone check."""
        row = self._split(row_number, cells)
        if "," in row.phone:
            whole = DECIMAL_COMMA_ZERO.fullmatch(row.phone)
            if whole is not None:
                return row._replace(phone=whole[1])
        return row

    def _text_rows(self) -> Iterator[ListRow]:
        """The data rows of a text list, each decoded, parsed and checked on its own.

        A row holding bytes a UTF-8 list cannot decode (``BAD_ENCODING``) or a cell over
        the CSV reader's limit (``UNREADABLE_ROW``) is rejected and the rows after it go
        on. A quoted cell opened and never closed, or spanning far more lines than a
        cell does, would merge every row after it into one: the list stops, naming the
        row where the quote opens (``_spanning``).
        """
        tolerant = is_utf8(self.encoding or "utf-8")
        errors = ESCAPE_UNDECODABLE if tolerant else "strict"
        clean = Escaped.last  # unchanged while nothing undecodable was met
        end = End()
        with self.path.open(encoding=self.encoding, newline="", errors=errors) as handle:
            # The line fed after the file's own tells a cell still open at its end.
            reader = csv.reader(itertools.chain(handle, end), delimiter=self.delimiter or ",")
            split = self._split_decimal_comma if self.delimiter == ";" else self._split
            index, last, bad, first_bad = self.phone_index, 0, 0, 0
            try:
                try:
                    header = next(reader, [])  # already read (its first line, by open_list)
                except csv.Error:  # a quoted header cell running on past csv's limit
                    self._spanning([], 1, reader.line_num, end, over_limit=True)  # raises
                    raise ListError(f"{self.path}: the header (row 1) cannot be read") from None
                if reader.line_num > 1:
                    self._spanning(header, 1, reader.line_num, end)
                last = reader.line_num
                while True:
                    try:
                        for cells in reader:
                            line = reader.line_num
                            if line != last + 1:  # a quoted cell holding line breaks
                                self._spanning(cells, last + 1, line, end)
                            last = line
                            # Blank lines are skipped; a filled phone cell settles it cheaply.
                            if not (
                                (len(cells) > index and cells[index].strip())
                                or "".join(cells).strip()
                            ):
                                continue
                            if Escaped.last != clean and undecodable(cells):
                                bad += 1
                                first_bad = first_bad or line
                                if bad > BAD_ENCODING_ROWS and bad * BAD_ENCODING_PER > line:
                                    raise ListError(
                                        f"{self.path}: row {first_bad} and {bad - 1} more rows "
                                        f"hold bytes that are not valid {self.encoding}: is the "
                                        "file in another encoding? name it with --encoding "
                                        "(cp1258, utf-16 …)"
                                    )
                                mended = split(line, [mend(cell) for cell in cells])
                                yield mended._replace(problem=BAD_ENCODING)
                                continue
                            yield split(line, cells)
                        break
                    except csv.Error:  # a cell over csv's limit; the reader goes on after it
                        start, line = last + 1, reader.line_num
                        if line != start:  # inside a quoted cell spanning lines
                            self._spanning([], start, line, end, over_limit=True)
                        last = line
                        width = max(len(self.headers) - 1, 0)
                        yield ListRow(start, "", ("",) * width, UNREADABLE_ROW)
            except UnicodeDecodeError as exc:
                line = first_undecodable_line(self.path, self.encoding or "utf-8")
                raise ListError(
                    f"{self.path}: row {line} is not valid {self.encoding} "
                    f"({exc.reason}); name the file's encoding with --encoding"
                ) from None
            except UnicodeError as exc:  # utf-16 named for a file without its BOM …
                raise ListError(
                    f"{self.path}: cannot be read as {self.encoding} ({exc}); "
                    "name the file's encoding with --encoding"
                ) from None

    def _spanning(
        self, cells: list[str], start: int, stop: int, end: End, over_limit: bool = False
    ) -> None:
        """Check a row whose quoted cell holds line breaks, from line ``start`` to
        ``stop``: an address on two lines is fine. A quote that is never closed (the
        reader went past the file's end), one spanning more than ``MAX_CELL_LINES`` or
        ``csv.field_size_limit()`` characters, or a cell whose lines are whole rows of
        the list (as wide as the header, a textable number where the phone goes: a
        stray quote closed by the next quoted cell) would turn the rows after it into
        one cell: the list stops, naming the row the quote opens on.

        Raises:
            ListError: naming the file and the row.
        """
        where = f"{self.path}: row {start}: a quoted cell"
        fix = "close the quote where the cell ends (or remove it) and read the list again"
        if end.reached:
            lines = stop - start
            raise ListError(
                f"{where} opens here and is never closed, so the rest of the file "
                f"({lines} line{'s' * (lines != 1)}) would be read as one cell; {fix}"
            )
        if over_limit:
            raise ListError(
                f"{where} opens here and runs past {csv.field_size_limit():,} characters, "
                f"to row {stop}: a quote not closed where it should be; {fix}"
            )
        if stop - start + 1 > MAX_CELL_LINES:
            raise ListError(
                f"{where} opens here and spans {stop - start + 1} lines, to row {stop} (a "
                f"cell holds at most {MAX_CELL_LINES}): a quote not closed where it "
                f"should be; {fix}"
            )
        delimiter, index, width = self.delimiter or ",", self.phone_index, len(self.headers)
        for cell in cells:
            for segment in LINE_BREAK.split(cell) if LINE_BREAK.search(cell) else ():
                parts = segment.split(delimiter)
                if len(parts) >= width and is_number(parts[index]):
                    raise ListError(
                        f"{where} opens here and holds whole rows of the list, to row "
                        f"{stop}: a quote not closed where it should be; {fix}"
                    )

    def _excel_rows(self) -> Iterator[ListRow]:
        book = open_workbook(self.path)
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


def sniff_delimiter(line: str) -> str:
    """The delimiter a CSV's first ``line`` uses: the most frequent of tab, ``;``, ``,``
    and ``|`` (``,`` for none)."""
    counts = {d: line.count(d) for d in ("\t", ";", ",", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_list(
    path: Path,
    *,
    phone_column: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    phone_headers: Sequence[str] = PHONE_HEADERS,
) -> RecipientList:
    """Open a recipient list and read its header.

    Parameters:
        phone_column: the phone column's header, when it cannot be found by name.
        encoding: the text encoding, when it cannot be told (``utf-8``, ``cp1258`` …).
        sheet: the XLSX sheet to read (default: the first).
        phone_headers: the folded header names taken as the phone column, in order (a
            list of numbers alone may call it ``number``: ``scripts.lists``).

    Raises:
        ListError: missing, unreadable, unknown format, unclear encoding, no header,
            no phone column; the message starts with the file's path.
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        if path.is_dir():
            raise ListError(f"{path}: a folder, not a recipient list; name the list's file")
        if path.exists():
            raise ListError(f"{path}: not a regular file (a FIFO, a device …); name a list's file")
        raise ListError(f"{path}: cannot read recipient list (no such file)")
    if suffix in EXCEL_FORMATS:
        book = open_workbook(path)
        try:
            names = book.sheetnames
            if sheet and sheet not in names:
                raise ListError(f"{path}: no sheet {sheet!r}; it has {', '.join(names)}")
            first = book[sheet] if sheet else book.worksheets[0]
            title = first.title
            header_cells = next(first.iter_rows(max_row=1, values_only=True), ())
        finally:
            book.close()
        headers = [_nfc(c).strip() for c in header_cells]
        while headers and not headers[-1]:
            headers.pop()
        if not headers:  # a cover sheet, or the list on another sheet
            raise ListError(
                f"{path}: sheet {title!r} has no header row (its first row is empty); the "
                f"workbook's sheets are {', '.join(repr(name) for name in names)}: name the "
                "list's with --sheet"
            )
        return _with_phone(
            RecipientList(path, "xlsx", None, headers, -1, sheet=sheet),
            phone_column,
            phone_headers,
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
    except UnicodeError as exc:  # utf-16 named for a file without its BOM …
        raise ListError(
            f"{path}: cannot be read as {codec} ({exc}); name the file's encoding with "
            "--encoding (utf-16-le or utf-16-be for UTF-16 without a BOM)"
        ) from None
    except OSError as exc:
        raise ListError(f"{path}: cannot read recipient list ({exc.strerror})") from None
    if not first_line.strip():
        raise ListError(f"{path}: empty file, expected a header row")
    delimiter = TEXT_FORMATS[suffix] or sniff_delimiter(first_line)
    if suffix == ".csv" and first_line.count(";") > first_line.count(","):
        delimiter = ";"  # what Excel writes where the comma is the decimal mark (vi-VN)
    try:
        cells = next(csv.reader([first_line], delimiter=delimiter))
    except csv.Error as exc:  # a cell over csv's limit: not a header (not repeated here)
        raise ListError(f"{path}: the header (row 1) cannot be read: {exc}") from None
    headers = [_nfc(h).strip() for h in cells]
    fmt = "tsv" if delimiter == "\t" else "csv"
    opened = RecipientList(path, fmt, codec, headers, -1, delimiter=delimiter)
    return _with_phone(opened, phone_column, phone_headers)


def _with_phone(
    opened: RecipientList, phone_column: str | None, names: Sequence[str] = PHONE_HEADERS
) -> RecipientList:
    if not opened.headers:
        raise ListError(f"{opened.path}: empty file, expected a header row")
    try:
        opened.phone_index = find_phone_column(opened.headers, phone_column, names)
    except ValueError as exc:
        raise ListError(f"{opened.path}: {exc}") from None
    return opened
