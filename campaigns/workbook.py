"""Opening an XLSX list safely: a workbook that would unpack to far more than any list
(a zip bomb) is refused before openpyxl parses it."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

#: An XLSX is a zip of XML parts; openpyxl reads its shared strings into memory whole.
#: Excel's own ceiling is 1,048,576 rows: a real list stays far below these, while a
#: crafted one (a 1 MB file whose strings unpack to gigabytes) is refused before parsing.
XLSX_MAX_UNPACKED = 2 << 30  # bytes, every part together
XLSX_MAX_PART_RATIO = 100  # unpacked / packed, for a part over XLSX_RATIO_FROM bytes
XLSX_RATIO_FROM = 16 << 20
#: openpyxl holds every shared string in memory, about six times their XML: 1.9 GB of
#: them (a 40 MB file, 52-fold: under the ratio) took more than 12 GB. A million-row list
#: with a few text columns has some 150 MB; beyond this, CSV is the way.
XLSX_MAX_SHARED_STRINGS = 256 << 20


def check_package(path: Path) -> None:
    """Refuse a workbook that would unpack to far more than any list (a zip bomb).

    Raises:
        ListError: naming the file and the part.
    """
    from campaigns.recipients import ListError  # here: the reader imports this module

    try:
        with zipfile.ZipFile(path) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ListError(f"{path}: not a readable XLSX workbook ({exc})") from None
    if sum(part.file_size for part in parts) > XLSX_MAX_UNPACKED:
        raise ListError(f"{path}: the workbook unpacks to more than 2 GB: not a list Loa reads")
    for part in parts:
        if part.filename.lower().endswith("sharedstrings.xml") and (
            part.file_size > XLSX_MAX_SHARED_STRINGS
        ):
            raise ListError(
                f"{path}: its shared strings unpack to {part.file_size >> 20} MB, more than "
                f"{XLSX_MAX_SHARED_STRINGS >> 20} MB would take in memory: save the list as CSV"
            )
        packed = max(part.compress_size, 1)
        if part.file_size > XLSX_RATIO_FROM and part.file_size / packed > XLSX_MAX_PART_RATIO:
            raise ListError(
                f"{path}: part {part.filename} unpacks {part.file_size // packed}-fold "
                f"(to {part.file_size >> 20} MB): refused as a zip bomb; save the list again "
                "from Excel or as CSV"
            )


def open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook  # imported here: CSV users never pay for it

    from campaigns.recipients import ListError

    check_package(path)
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ListError(f"{path}: not a readable XLSX workbook ({exc})") from None
