"""Tables that never cut a value: as wide as their content where nothing limits the
width (a pipe or a file: ``scripts.output.GENEROUS_WIDTH``), and on a narrow terminal
the less important columns left out, said so in a line under the table, rather than a
value cut with "…" or a column cropped off the edge.

rich's own way on a narrow terminal is to cut: a word wider than its column ends in
"…" (``vietnamob…``, ``0,0 ``), and a table whose narrowest layout is wider than the
screen loses its right-hand columns. Here a table is built by a function of the columns
to leave out (``fit``); the columns that may be folded (an id, a name, a message: say
so with ``overflow="fold"`` when adding them) count at their ``min_width``, every other
at its longest word or header line, and columns are left out, least important first,
until that fits.
What is left folds whatever still does not fit onto the next line (``fold``).

rich is imported by the functions, not here (``loa --help`` must answer at once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from scripts.output import out

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def fold(table: Table) -> Table:
    """``table`` with every column folding a value too wide for it onto the next line
    (never cutting it with "…"); returns it."""
    for column in table.columns:
        column.overflow = "fold"
    return table


def _needs(table: Table, console: Console) -> tuple[list[tuple[int, int, int]], int]:
    """Per column ``(narrowest, widest value, widest with its header)`` content width
    (``narrowest`` says how a column counts), and what padding and borders add to the
    table's width."""
    from rich.measure import Measurement

    options = console.options
    _, right, _, left = table.padding
    count = len(table.columns)
    extra = (2 if table.box and table.show_edge else 0) + (count - 1 if table.box else 0)
    needs = []
    for index, column in enumerate(table.columns):
        extra += left + right
        if not table.pad_edge:
            extra -= (left if index == 0 else 0) + (right if index == count - 1 else 0)
        if column.width is not None:
            needs.append((column.width, column.width, column.width))
            continue
        values = [Measurement.get(console, options, cell) for cell in column.cells]
        header = [Measurement.get(console, options, column.header)] if table.show_header else []
        if column.overflow == "fold":
            least = column.min_width or 1
        else:  # the longest word of a value, each line of the header whole
            least = max((m.minimum for m in values), default=1)
            least = max(least, *(m.maximum for m in header), column.min_width or 0)
        widest = max(least, max((m.maximum for m in values), default=1))
        needs.append((least, widest, max(widest, *(m.maximum for m in header))))
    return needs, extra


def narrowest(table: Table, console: Console) -> int:
    """The fewest columns ``table`` takes without breaking a word of a column that may
    not fold (numbers, times, states) nor a line of its header (write a long header on
    two lines: ``"đến máy\\ndelivered"``): such a column's longest word or header line, a
    folding column's ``min_width`` (1 without one), plus padding and borders.
    Fixed-width columns and renderables (a progress bar) count at their width."""
    needs, extra = _needs(table, console)
    return sum(least for least, _, _ in needs) + extra


def _fill(widths: list[int], wants: list[int], spare: int) -> int:
    """Give ``spare`` columns to ``widths``, each up to what it ``wants`` more, the
    smallest wants first (so that a value one column short is whole before a long one
    is a little less wrapped); returns what is left."""
    waiting = sorted((i for i, want in enumerate(wants) if want > 0), key=lambda i: wants[i])
    while waiting and spare > 0:
        share = max(1, spare // len(waiting))
        index = waiting.pop(0)
        given = min(wants[index], share, spare)
        widths[index] += given
        spare -= given
    return spare


def _share_out(table: Table, console: Console) -> None:
    """When ``table`` is wider than the console, fix each column's width: at least its
    narrowest, then room for whole values, then for whole headers (a header wraps well).
    rich's own squeezing takes from the widest columns whatever their words, cutting a
    carrier's name or a share's "%"."""
    needs, extra = _needs(table, console)
    room = console.width - extra
    if sum(whole for _, _, whole in needs) <= room:
        return
    widths = [least for least, _, _ in needs]
    spare = max(0, room - sum(widths))
    spare = _fill(widths, [value - least for least, value, _ in needs], spare)
    _fill(widths, [whole - value for _, value, whole in needs], spare)
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width


def fit(
    build: Callable[[frozenset[str]], Table],
    optional: Sequence[str] = (),
    console: Console | None = None,
) -> tuple[Table, list[str]]:
    """The table ``build(left_out)`` makes, leaving out as few of the ``optional``
    columns (their keys, least important first) as it takes for the table to fit the
    console's width (``narrowest``), its columns' widths shared out so that no word of a
    column that may not fold is broken; every column then folds (``fold``). Returns the
    table and the keys left out, in order (empty when everything fits)."""
    console = console or out.console
    width = console.width
    left_out: list[str] = []
    table = build(frozenset())
    for key in optional:
        if narrowest(table, console) <= width:
            break
        left_out.append(key)
        table = build(frozenset(left_out))
    _share_out(table, console)
    return fold(table), left_out


def left_out_note(names: Sequence[str]) -> str | None:
    """The line under a table that left columns out (rich markup), naming them; ``None``
    when none was."""
    if not names:
        return None
    said = ", ".join(name.replace("\n", " · ") for name in names)
    return (
        f"[dim]Cửa sổ hẹp, đã ẩn cột · narrow window, columns left out: {said} "
        "(cửa sổ rộng hơn hoặc --json · widen it or use --json)[/]"
    )
