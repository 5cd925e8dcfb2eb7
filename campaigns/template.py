"""Message templates: fields from the list, rendered safely, and the "không dấu" option.

A template is text with ``{field}`` placeholders (``{{`` and ``}}`` for literal braces).
Only plain names are allowed: no attribute or index access, no conversion, no format spec,
so a template can never reach into Python objects, and a value is inserted as text, never
formatted again. Values are whitespace-collapsed, so a stray newline in a list cell cannot
break a message.

"Không dấu" (without diacritics) saves parts (UCS-2 -> GSM) but can change meaning
(``bạn`` / ``bán`` / ``bàn`` all become ``ban``): it is a per-template choice that the plan
reports, never applied silently.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from campaigns.text import Segments, normalise, segments


class TemplateError(ValueError):
    """A template that cannot be used (bad placeholder)."""


#: Typography a word processor puts in, said plainly in GSM 03.38: one curly quote or
#: dash forces a whole message into UCS-2 (a text of one GSM-7 part becomes three), and
#: the không-dấu version exists to be cheap. Invisible characters (zero-width joiners,
#: byte-order marks) are dropped, spaces of other widths become a space.
PLAIN = str.maketrans(
    {
        "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
        "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
        "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
        "…": "...", "•": "*", "·": ".",
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ",
        "\u3000": " ", "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None,
        "\ufeff": None,
    }
)  # fmt: skip


@lru_cache(maxsize=65536)
def khong_dau(text: str) -> str:
    """Vietnamese without diacritics: tone and shape marks dropped, ``đ``/``Đ`` -> ``d``/``D``,
    and typographic punctuation folded to what GSM-7 says plainly (``PLAIN``); format
    characters a phone shows as nothing (soft hyphens, direction marks and overrides)
    dropped, since any one of them forces the whole text into UCS-2."""
    decomposed = unicodedata.normalize("NFD", text.translate(PLAIN))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Cf"))
    return unicodedata.normalize("NFC", stripped.replace("đ", "d").replace("Đ", "D"))


def fields_of(text: str) -> list[str]:
    """The placeholder names of a template, in order of first use.

    Raises:
        TemplateError: a placeholder that is not a plain name, or unbalanced braces.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise TemplateError(f"placeholder {{{shown}}} must be a plain name such as {{name}}")
        if name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class Template:
    """A compiled template: its fields, a positional form for fast rendering, and (when it
    has no fields) its segments computed once."""

    text: str
    fields: tuple[str, ...]
    strip_diacritics: bool
    _positional: str
    fixed: Segments | None

    @classmethod
    def compile(cls, text: str, strip_diacritics: bool = False) -> Template:
        text = normalise(text)
        if strip_diacritics:
            text = khong_dau(text)
        fields = tuple(fields_of(text))
        # "{name} ở {district}" -> "{0} ở {1}": str.format with positional arguments,
        # built once, is the cheapest safe renderer per row.
        pieces = []
        for literal, name, _spec, _conv in string.Formatter().parse(text):
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is not None:
                pieces.append("{" + str(fields.index(name)) + "}")
        positional = "".join(pieces)
        if fields:
            return cls(text, fields, strip_diacritics, positional, None)
        plain = positional.format()  # literal braces unescaped
        return cls(plain, fields, strip_diacritics, positional, segments(plain))

    def render(self, values: tuple[str, ...] = ()) -> str:
        """The message for one recipient; ``values`` in ``fields`` order."""
        if not self.fields:
            return self.text
        cleaned = [" ".join(v.split()) for v in values]
        if self.strip_diacritics:
            cleaned = [khong_dau(v) for v in cleaned]
        return normalise(self._positional.format(*cleaned))

    def segments_for(self, values: tuple[str, ...] = ()) -> tuple[str, Segments]:
        """Rendered text and its segments."""
        if self.fixed is not None:
            return self.text, self.fixed
        text = self.render(values)
        return text, segments(text)
