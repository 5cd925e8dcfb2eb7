"""Telling the text encoding of a list file, or refusing to guess.

Lists arrive as UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text") and
Windows-1258 (Vietnamese Windows). A BOM decides; otherwise a sample that decodes as UTF-8
is UTF-8; otherwise charset-normalizer is asked, and only a confident Windows-1258 answer
is taken. Anything else stops with an error that names ``--encoding``: mojibake in a
citizen's name, or a number read wrong, is worse than asking.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

#: Bytes read to decide: enough for hundreds of rows, read once per file.
SAMPLE = 64 * 1024
#: The encodings the detector may answer with on its own.
TRUSTED = {"cp1258": "cp1258"}


class EncodingUnclear(ValueError):
    """The encoding cannot be told with confidence; the message names ``--encoding``."""


def detect(path: Path) -> str:
    """The Python codec name for ``path``'s text.

    Raises:
        EncodingUnclear: no BOM, not UTF-8, and no confident Windows-1258 reading.
        OSError: the file cannot be read.
    """
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample).best()
    if best is not None and best.encoding in TRUSTED and best.chaos < 0.1:
        return TRUSTED[best.encoding]
    guess = f" (it might be {best.encoding})" if best is not None else ""
    raise EncodingUnclear(
        f"cannot tell the text encoding with confidence{guess}; "
        "name it with --encoding (utf-8, utf-16, cp1258 …)"
    )
