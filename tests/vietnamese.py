"""Test helpers for Vietnamese text in legacy encodings."""

from __future__ import annotations

import unicodedata

TONES = "\u0300\u0301\u0303\u0309\u0323"


def to_cp1258(text: str) -> bytes:
    """Encode as Windows-1258 does: the letter with its shape (â, ơ, ư …) precomposed,
    the tone mark as a combining character after it."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        decomposed = unicodedata.normalize("NFD", ch)
        shape = "".join(c for c in decomposed if c not in TONES)
        tones = "".join(c for c in decomposed if c in TONES)
        out.append(unicodedata.normalize("NFC", shape).encode("cp1258") + tones.encode("cp1258"))
    return b"".join(out)
