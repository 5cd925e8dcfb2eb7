"""What a damaged text list looks like to its reader (``campaigns.recipients``): bytes
UTF-8 cannot read, escaped so that only their row is rejected; a quoted cell never closed,
noticed at the file's end; a decimal-comma number in a ``;`` file.

Kept apart from the reader itself: these are the rare paths, each with its reason.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from campaigns.phones import PhoneRejected, normalise

#: A ``;`` file's number with a zero decimal-comma fraction (``912.345.678,00``).
DECIMAL_COMMA_ZERO = re.compile(r"\s*('?\+?[\d .()\-]*\d),0+\s*")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\udc80-\udcff]")
ESCAPE_UNDECODABLE = "loa-escape-undecodable"
_TICKS = itertools.count(1)
_surrogateescape = codecs.lookup_error("surrogateescape")


class Escaped:
    """The tick of the last undecodable bytes ``_escape_undecodable`` met, in any list
    (``_TICKS``: unique, so a reader that saw it change knows bytes were escaped since
    it started). Only then are rows searched for them: that search would cost a fifth
    of the reading time on every row of every clean list."""

    last = 0


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Decode undecodable bytes as lone surrogates (``surrogateescape``), noting it: the
    row holding them is rejected, not the list."""
    Escaped.last = next(_TICKS)
    return _surrogateescape(exc)


codecs.register_error(ESCAPE_UNDECODABLE, _escape_undecodable)


def is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def is_number(cell: str) -> bool:
    """A textable number, as a row's phone cell holds one (not a number in a note)."""
    try:
        normalise(cell)
    except PhoneRejected:
        return False
    return True


def undecodable(cells: list[str]) -> bool:
    return any(_SURROGATE.search(cell) for cell in cells)


def mend(cell: str) -> str:
    """A cell with its undecodable bytes as U+FFFD: writable, and showing where they were."""
    if not _SURROGATE.search(cell):
        return cell
    return cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class End:
    """The last line fed to the CSV reader, after the file's: ``reached`` once the file
    is read to its end. A row still being read then was a quoted cell never closed."""

    reached = False

    def __iter__(self) -> Iterator[str]:
        self.reached = True
        yield " "  # a blank line, skipped, when the file's last row was complete


def first_undecodable_line(path: Path, encoding: str) -> int | str:
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
