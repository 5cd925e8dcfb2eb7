"""``loa text check``: what a message costs before anyone sends it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scripts.common import JsonOption
from scripts.output import BAD_INPUT, fail, out, print_json

app = typer.Typer(help="Message text: encoding and parts.", no_args_is_help=True)

#: Far past any SMS (providers take a few thousand characters at most, concatenation
#: tops out at 255 parts): what is longer is not a message, and counting a 300 MB file
#: took minutes.
LONGEST = 100_000


@app.command("check")
def check(
    text: Annotated[str | None, typer.Argument(help="The message text (or use --file).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the text from a UTF-8 file.")
    ] = None,
    part_header: Annotated[
        int,
        typer.Option(
            "--part-header",
            min=6,  # campaigns.text.PART_HEADER .. MAX_PART_HEADER (not imported: start-up)
            max=136,
            metavar="OCTETS",
            help="Header octets on each part of a long message: 6 (8-bit reference, the "
            "usual), 7 (16-bit, as some carriers' SMSCs take them).",
        ),
    ] = 6,
    as_json: JsonOption = False,
) -> None:
    """Print the encoding (GSM 03.38 or UCS-2), the parts a carrier bills, the characters
    that force UCS-2, and the "không dấu" version with its parts. Parts of a long message
    hold 153 GSM-7 septets or 67 UCS-2 units behind the usual 6-octet header, 152 or 66
    behind a 7-octet one (``--part-header 7``; ``campaigns.text.capacity``)."""
    from rich.markup import escape

    from campaigns.template import khong_dau
    from campaigns.text import forcing_ucs2, normalise, segments, shows_anything
    from scripts import formats as fmt

    # No settings read: counting parts needs none, and a text check must answer at once.
    if (text is None) == (file is None):
        fail("give the text or --file, one of the two", BAD_INPUT)
    too_long = f"the text is over {fmt.count(LONGEST)} characters: no SMS is that long"
    if file is not None:
        try:
            with file.open("rb") as handle:  # never more than a message could be
                data = handle.read(4 * LONGEST + 1)  # UTF-8: at most 4 bytes a character
        except OSError as exc:
            fail(f"{file}: cannot read as UTF-8 text ({exc})", BAD_INPUT)
        if len(data) > 4 * LONGEST:  # before decoding: the cut may split a character
            fail(too_long, BAD_INPUT)
        try:
            text = data.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError as exc:
            fail(f"{file}: cannot read as UTF-8 text ({exc})", BAD_INPUT)
    assert text is not None
    if len(text) > LONGEST:
        fail(too_long, BAD_INPUT)
    if not shows_anything(text):  # "", spaces, or only zero-width and control characters
        fail("the text is empty (or shows nothing): nothing to send", BAD_INPUT)
    text = normalise(text)
    plain = khong_dau(text)
    full, stripped = segments(text, part_header), segments(plain, part_header)
    result = {
        "characters": len(text),
        "encoding": full.encoding.value,
        "parts": full.parts,
        "units": full.units,
        "part_header": part_header,
        "forcing_ucs2": forcing_ucs2(text),
        # Named, because some are invisible (a no-break space, a zero-width joiner).
        "forcing_ucs2_named": [_named(ch) for ch in forcing_ucs2(text)],
        "khong_dau": {"text": plain, "encoding": stripped.encoding.value, "parts": stripped.parts},
    }
    if as_json:
        print_json(result)
        return
    units = fmt.count(full.units)
    out.print(
        f"[bold]Mã hoá · encoding:[/] {full.encoding.value.upper()}  ({units} đơn vị · units)"
    )
    behind = "" if part_header == 6 else f"  ({part_header}-octet part header)"
    out.print(f"[bold]Số tin · parts:[/] {fmt.count(full.parts)}{behind}")
    if result["forcing_ucs2"]:
        out.print("[bold]Ký tự buộc UCS-2 · forcing UCS-2:[/]")
        for named in result["forcing_ucs2_named"]:
            out.print(f"  {named}", markup=False)
    # The text is the user's: shown as text (no markup), and no escape sequence or
    # direction override reaches the terminal.
    out.print(
        f"[bold]Không dấu · without diacritics:[/] {fmt.count(stripped.parts)} tin · parts, "
        f"{stripped.encoding.value.upper()}: {escape(fmt.plain(plain))}"
    )


def _named(ch: str) -> str:
    """``“ U+201C LEFT DOUBLE QUOTATION MARK``; an invisible one shows as its name only."""
    import unicodedata

    name = unicodedata.name(ch, "unnamed")
    shown = ch if ch.isprintable() and not ch.isspace() else " "
    return f"{shown} U+{ord(ch):04X} {name}"
