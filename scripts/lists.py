"""``loa recipients`` and ``loa suppress``: lists on their own, before any campaign."""

from __future__ import annotations

import csv
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    pass

from campaigns.files import csv_row
from scripts import formats as fmt
from scripts.common import (
    Encoding,
    JsonOption,
    PhoneColumn,
    Ported,
    Rejects,
    Sheet,
    check_outputs,
    counter,
    ledger_engine,
    progress,
    settings,
)
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json, screen_table

recipients_app = typer.Typer(help="Check and clean recipient lists.", no_args_is_help=True)
suppress_app = typer.Typer(
    help="Opt-out, Do-Not-Call and residents lists, checked at planning and at arrivals.",
    no_args_is_help=True,
)


class ListName(StrEnum):
    dnc = "dnc"
    opt_out = "opt_out"
    residents = "residents"


ListOpt = Annotated[
    ListName,
    typer.Option(
        "--list",
        help="dnc: the Do-Not-Call register; opt_out: refusals; residents: the province's "
        "residents (arrivals welcome visitors only).",
    ),
]


@recipients_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The list: CSV, TSV or XLSX.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the usable rows here, the phone in E.164.")
    ] = None,
    rejects: Rejects = None,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    ported: Ported = None,
    as_json: JsonOption = False,
) -> None:
    """Read a list and say which rows hold a textable number: every rejection with its
    reason, duplicates counted once, legacy 11-digit numbers converted, and the numbers
    per carrier (with `--ported`, a ported number counts under the carrier serving it
    now, as the plan routes it)."""
    from campaigns.phones import load_carrier_overrides
    from campaigns.recipients import ListError, open_list
    from campaigns.screen import ScreenSummary, screen

    loaded = settings()
    check_outputs(
        loaded, {"--out": out_file, "--rejects": rejects}, {"the list": file, "--ported": ported}
    )
    summary = ScreenSummary()
    with errors_as_exit_codes():
        carriers = None
        if ported is not None:
            try:
                carriers = load_carrier_overrides(ported)
            except ValueError as exc:
                raise ListError(str(exc)) from None
        opened = open_list(file, phone_column=phone_column, encoding=encoding, sheet=sheet)
        # Each output appears whole when the list is read (0600, never through a link),
        # and every cell from the list is quoted if a spreadsheet would run it.
        with ExitStack() as outputs:
            clean = _writer(out_file, [opened.phone_header, *opened.columns], outputs)
            bad = _writer(rejects, ["row", "value", "reason"], outputs)
            with progress() as bar:
                tick = counter(bar, "Đang đọc danh sách")
                for row, phone, reason in screen(opened.rows(), summary, carriers):
                    if phone is not None and clean is not None:
                        clean.writerow(csv_row([phone.e164, *row.values]))
                    elif reason is not None and bad is not None:
                        bad.writerow(csv_row([row.row, row.phone, reason]))
                    if summary.rows_read % 5000 == 0:
                        tick(5000)
            _finish(outputs, [path for path in (out_file, rejects) if path is not None])
    result = {
        **summary.as_dict(),
        "list": str(file),
        "encoding": opened.encoding,
        "phone_column": opened.phone_header,
    }
    if as_json:
        print_json(result)
    else:
        out.print(screen_table(result, f"Danh sách {file.name}"))


def _writer(path: Path | None, header: list[str], outputs: ExitStack) -> Any:
    """A CSV writer to a private file that replaces ``path`` when ``outputs`` closes
    (``None`` without a path).

    Raises:
        ListError: the file cannot be made beside ``path``.
    """
    from campaigns.files import as_text, atomic_private
    from campaigns.recipients import ListError

    if path is None:
        return None
    try:
        handle = outputs.enter_context(atomic_private(path))
    except OSError as exc:
        raise ListError(f"{path}: cannot write ({exc.strerror})") from None
    writer = csv.writer(outputs.enter_context(as_text(handle)))
    writer.writerow(csv_row(header))
    return writer


def _finish(outputs: ExitStack, paths: list[Path]) -> None:
    """Close ``outputs``, renaming each file onto its path.

    Raises:
        ListError: one cannot be.
    """
    from campaigns.recipients import ListError

    try:
        outputs.close()
    except OSError as exc:
        where = ", ".join(str(path) for path in paths)
        raise ListError(f"{where}: cannot write ({exc.strerror})") from None


@suppress_app.command("import")
def import_list(
    file: Annotated[
        Path, typer.Argument(help="A list of numbers: CSV, TSV or XLSX with a phone column.")
    ],
    list_name: ListOpt,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    as_json: JsonOption = False,
) -> None:
    """Add every number of a file to a suppression list. Unusable rows are counted and
    skipped; the import is one transaction."""
    from campaigns.recipients import PHONE_HEADERS, open_list
    from campaigns.screen import ScreenSummary, screen
    from ledger.suppressions import add_numbers

    summary = ScreenSummary()
    with ledger_engine() as engine:
        # A file of numbers alone often calls its column `number` (as the ported-number
        # list does); in a recipient list that could be a row's serial number.
        opened = open_list(
            file,
            phone_column=phone_column,
            encoding=encoding,
            phone_headers=(*PHONE_HEADERS, "number"),
        )
        numbers = (
            phone.e164 for _, phone, _ in screen(opened.rows(), summary) if phone is not None
        )
        added = add_numbers(engine, list_name.value, numbers, source=file.name)
    result = {
        "list": list_name.value,
        "added": added,
        "already_listed": summary.valid - added,
        **summary.as_dict(),
    }
    if as_json:
        print_json(result)
    else:
        # Every row read in one of the four, so the line adds up to the file.
        out.print(f"{list_name.value}: {fmt.count(summary.rows_read)} rows read: "
                  f"{fmt.count(added)} numbers added, {fmt.count(summary.valid - added)} already listed, "
                  f"{fmt.count(summary.duplicates)} repeated in the file, "
                  f"{fmt.count(sum(summary.rejected.values()))} rows unusable")  # fmt: skip


@suppress_app.command("add")
def add(
    number: Annotated[str, typer.Argument(help="The number, in any usual form.")],
    list_name: ListOpt,
) -> None:
    """Add one number to a suppression list."""
    from ledger.suppressions import add_numbers

    with ledger_engine() as engine:
        added = add_numbers(engine, list_name.value, [_number(number)], source="operator")
    out.print(f"{list_name.value}: {'added' if added else 'already listed'}")


@suppress_app.command("remove")
def remove(
    number: Annotated[str, typer.Argument(help="The number, in any usual form.")],
    list_name: ListOpt,
) -> None:
    """Remove one number from a suppression list (exit 1 when it was not listed)."""
    from ledger.suppressions import remove_number

    with ledger_engine() as engine:
        removed = remove_number(engine, list_name.value, _number(number))
    out.print(f"{list_name.value}: {'removed' if removed else 'was not listed'}")
    if not removed:
        raise typer.Exit(1)


@suppress_app.command("show")
def show(as_json: JsonOption = False) -> None:
    """How many numbers each suppression list holds."""
    from ledger.suppressions import counts

    with ledger_engine() as engine:
        found = counts(engine)
    if as_json:
        print_json(found)
    else:
        for name, count in found.items():
            out.print(f"{name}: {fmt.count(count)}")


def _number(raw: str) -> str:
    from campaigns.phones import PhoneRejected, mask_text, normalise

    try:
        return normalise(raw).e164
    except PhoneRejected as rejected:  # a landline is a number too: said masked
        fail(f"{mask_text(raw)!r} is not a textable number ({rejected.reason.value})", BAD_INPUT)
