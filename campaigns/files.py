"""Files Loa writes, made so that they are not a way in. Every writer goes through here.

**Spreadsheet cells are data, never formulas.** A recipient list, an arrivals feed or a
provider's answer can hold ``=HYPERLINK("http://x","y")`` or ``=cmd|" /C calc"!A0``;
written as it is, a spreadsheet program opening the report runs it. OWASP's "CSV
Injection" (https://owasp.org/www-community/attacks/CSV_Injection) names the cells that
start a formula, those beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return, and the fix: prefix them with a single quote, which spreadsheets read as "this is
text". ``csv_cell`` does so (and also quotes a cell that already begins with a quote, so
that ``plain_cell`` gives back exactly what was written); ``xlsx_append`` stores every
string as a text cell.

**Files holding personal data are their owner's alone, and never reached through a
link.** ``create_private`` makes a new file (mode 0600) and fails rather than follow a
link or overwrite what is there; ``atomic_private`` writes a file beside its target under
a fresh random name and renames it onto the target when complete, leaving nothing on
error; ``private_folder`` makes folders 0700; ``real_folder`` refuses a folder that is a
link; ``open_regular`` reads a regular file only, never through a link.
"""

from __future__ import annotations

import errno
import glob
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, TextIO

#: First characters that make a spreadsheet read a cell as a formula (OWASP), and the
#: quote itself (so that quoting can be undone exactly, ``plain_cell``).
_RISKY_FIRST = frozenset("=+-@\t\r'")
#: A cell that is wholly a plain number (``+84901234567``, ``-5``, ``3.5``) stays as it is:
#: a sign, digits and a point cannot call a function, reach a link or run a command.
#: ``[0-9]``, not ``\d``: other scripts' digits are not numbers to a spreadsheet.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
#: The same rule in PostgreSQL's regular expressions (``ledger.recipients_csv`` builds CSV rows in
#: SQL and must write the same bytes); a test holds both to the same answers.
SQL_RISKY_FIRST = "^[-=+@\t\r']"
SQL_PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePath(ValueError):
    """A path Loa will not read or write through: a symbolic link, or not what it should
    be (a folder, a regular file). The message names it."""


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a CSV cell: a string a spreadsheet would read as a formula
    (first character ``= + - @``, tab or carriage return) gets a leading ``'``, unless it
    is wholly a plain number; so does a string already starting with ``'``. Anything
    else, and every non-string, is returned unchanged."""
    if (
        type(value) is str
        and value
        and value[0] in _RISKY_FIRST
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """Each of ``values`` through ``csv_cell``: the row to hand to ``csv.writer``."""
    return [csv_cell(value) for value in values]


def plain_cell(text: str) -> str:
    """What ``csv_cell`` was given: the one leading quote it adds, taken off. Exact,
    because ``csv_cell`` quotes every value that begins with a quote."""
    return text[1:] if text.startswith("'") else text


def xlsx_append(sheet: Any, values: Iterable[Any]) -> None:
    """Append ``values`` as one row of a write-only openpyxl ``sheet``, every string a
    text cell. openpyxl stores a string beginning with ``=`` as a formula (and one such as
    ``#N/A`` as an error): those go in as cells forced to text (``data_type`` ``"s"``,
    written as an inline string); other strings are text already, and numbers and dates
    stay numbers and dates. Control characters XML cannot hold (a list cell with ``\x0b``
    once made every XLSX report of its campaign fail) are written as U+FFFD."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    row = []
    for value in values:
        if type(value) is str and ILLEGAL_CHARACTERS_RE.search(value):
            value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if type(value) is str and value[:1] in ("=", "#"):
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            value = cell
        row.append(value)
    sheet.append(row)


def create_private(path: Path | str, dir_fd: int | None = None) -> BinaryIO:
    """A new file at ``path`` (relative to the open folder ``dir_fd`` when given), open
    for writing, readable and writable by its owner only (0600), made with ``O_CREAT |
    O_EXCL | O_NOFOLLOW``: an existing name, a link above all (even one pointing nowhere),
    is never followed nor overwritten.

    Raises:
        FileExistsError: the name is taken (choose another).
        OSError: it cannot be made (no such folder, no permission …).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(path, flags, 0o600, dir_fd=dir_fd)
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def open_folder(path: Path) -> int:
    """A descriptor of the folder ``path`` itself, never of what a link there points to:
    names made relative to it (``dir_fd``) land in this folder even if the name ``path``
    is swapped for a link afterwards. The caller closes it.

    Raises:
        OSError: not a folder, a link (``ELOOP``), or it cannot be opened.
    """
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)


@contextmanager
def atomic_private(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` whole or not at all. Yields a binary file made by
    ``tempfile.mkstemp`` beside ``path`` (a fresh random name, 0600, never through a
    link); when the block ends it is flushed to disk and renamed onto ``path``
    (``os.replace``: a link or file already at ``path`` is replaced, not followed). On any
    error, or an exit from the block, the temporary file is removed and ``path`` left as
    it was.

    Raises:
        OSError: the temporary file cannot be made beside ``path``, or not renamed onto it
            (``path`` is a folder …); ``exc.filename`` may be the temporary file's.
    """
    folder = path.parent if str(path.parent) else Path(".")
    sweep_partials(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


#: A temporary file or folder this old is a writer's that died (``kill -9``, a lost
#: machine): a live one writes on, and its time moves.
STALE_PARTIAL_SECONDS = 600.0


def sweep_partials(path: Path, older_than: float = STALE_PARTIAL_SECONDS) -> int:
    """Remove what writers of ``path`` killed mid-write left beside it: the temporary
    files (``.NAME.*.partial``) and folders (``.NAME.partial-*``) untouched for
    ``older_than`` seconds. They hold personal data, and nothing else removes them. Links
    and anything else are left alone. Returns how many were removed."""
    import shutil
    import time

    folder = path.parent if str(path.parent) else Path(".")
    removed = 0
    try:
        entries = list(folder.glob(f".{glob.escape(path.name)}.*partial*"))
    except OSError:
        return 0
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if time.time() - info.st_mtime < older_than:
            continue  # perhaps a writer at work
        with suppress(OSError):
            if stat.S_ISREG(info.st_mode):
                entry.unlink()
            elif stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry)
            else:
                continue
            removed += 1
    return removed


@contextmanager
def output(target: Path | BinaryIO) -> Iterator[BinaryIO]:
    """A binary file to write to: ``target`` itself when it is an open file (left open),
    or a new private file at the path ``target`` (``create_private``, closed after).

    Raises:
        FileExistsError, OSError: as ``create_private``.
    """
    if isinstance(target, Path):
        with create_private(target) as handle:
            yield handle
    else:
        yield target


@contextmanager
def as_text(handle: BinaryIO, encoding: str = "utf-8") -> Iterator[TextIO]:
    """``handle`` as text (no newline translation: the csv module's way), flushed and
    given back at the end without being closed."""
    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    try:
        yield text
        text.flush()
    finally:
        text.detach()


def private_folder(path: Path) -> Path:
    """Make the folder ``path`` and any missing parent, each 0700; returns ``path``.
    Folders already there are left as they are (their owner chose their mode).

    Raises:
        OSError: it cannot be made, or ``path`` is there and not a folder.
    """
    try:
        os.mkdir(path, 0o700)
    except FileNotFoundError:
        if path.parent == path:
            raise
        private_folder(path.parent)
        with suppress(FileExistsError):
            os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    return path


def real_folder(path: Path) -> Path:
    """The folder ``path``, made (0700) if absent; never a link, so that nothing written
    into it can land elsewhere. Returns ``path``.

    Raises:
        UnsafePath: ``path`` is a symbolic link, or something other than a folder.
        OSError: it cannot be made.
    """
    with suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path}: a symbolic link; Loa writes only into a real folder there")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path}: not a folder")
    return path


def open_regular(path: Path) -> BinaryIO:
    """``path`` open for reading in binary, if it is a regular file reached without a
    link (``O_NOFOLLOW``, then checked on the open file, so nothing is swapped between).

    Raises:
        UnsafePath: a symbolic link, or not a regular file (a folder, a pipe …).
        OSError: it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{path}: a symbolic link; Loa reads regular files only") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{path}: not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def plain_file_name(name: str) -> str:
    """A file's name as Loa stores an upload under it: composed (NFC: a Mac sends the
    accents apart), each character but letters, digits, ``.``, ``_`` and ``-`` an ``_``.
    A campaign file sent to the API names its goal's files by their names; both sides go
    through this, so ``muc tieu.toml`` finds the upload saved as ``muc_tieu.toml``."""
    import re
    import unicodedata

    return re.sub(r"[^\w.-]", "_", unicodedata.normalize("NFC", name))
