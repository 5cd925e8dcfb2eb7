"""``loa arrivals``: welcome visitors arriving in the province."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_runtime, settings
from scripts.output import BAD_INPUT, FAILURE, errors_as_exit_codes, fail, out, print_json

app = typer.Typer(
    help="Tourist arrivals: one welcome per visitor, in their language. An arrivals file is "
    "a CSV (header row) or JSON lines with `event_id`, `phone`, `arrived_at`, `area` and, "
    "optionally, `roaming_country`, `language`, `home`: `loa arrivals ingest --help` says "
    "what each holds.",
    no_args_is_help=True,
)

RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        "-r",
        help="The rules file: a campaign file with an [arrivals] table (examples/arrivals.toml). "
        "Default: LOA_ARRIVALS_RULES, else ./arrivals.toml.",
    ),
]


@app.command("ingest")
def ingest(
    path: Annotated[
        Path, typer.Argument(help="An arrivals file (.csv, .jsonl) or an inbox folder of them.")
    ],
    rules: RulesOption = None,
    settle: Annotated[
        float,
        typer.Option(help="Inbox: leave files modified in the last SETTLE seconds (being copied)."),
    ] = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Take arrival events from a file or an inbox folder: each visitor welcomed once per
    `once_per_days`, in their language, within the sending hours (a night arrival at the
    next opening, unless its validity ends first). Each file taken moves to `done/` with a
    receipt and its rejected rows; an unreadable one to `failed/`. A file or event taken
    before welcomes nobody again. Only regular files are read: a symbolic link in the
    inbox is skipped and reported, and a `done/` or `failed/` that is a link is refused.

    The file: UTF-8, either `.csv` with a header row naming the columns (in any order;
    other columns are ignored) or `.jsonl` (`.ndjson`, `.json`) with one JSON object a
    line holding the same fields:

    - `event_id` (required): the carrier's id of the event, 1 to 64 characters; an id
      taken before is skipped.
    - `phone` (required): the visitor's number, in any form a list takes (+84…, 0…, +82…).
    - `arrived_at` (required): ISO 8601 with an offset (`2026-11-29T07:30:00+07:00`),
      without one meaning Vietnam's time, or Unix seconds.
    - `area` (required): a key of the rules' `[arrivals.areas]` (`586`).
    - `roaming_country` (optional): the ISO country of the visitor's network (`KR`).
    - `language` (optional): 2 or 3 letters (`ko`); else the number's country's.
    - `home` (optional): `1`/`true` when the carrier flags a resident of the area
      (no welcome with `home_flag = true`).

    Exit 0: all taken; 1: some rows (or inbox files) were refused, see the rejects; 2: the
    rules file, the provider or a named file is unusable.

    Examples:

        loa arrivals ingest inbox/ --rules arrivals.toml
        loa arrivals ingest arrivals-0715.csv -r arrivals.toml --json
    """
    from campaigns.arrivals import load_arrivals
    from worker.arrivals.inbox import (
        ArrivalFileError,
        FileOutcome,
        InboxError,
        check_inbox,
        check_readable,
        scan,
        take,
    )
    from worker.arrivals.ingest import Ingest

    if not path.exists():
        fail(f"{path}: no such file or folder", BAD_INPUT)
    loaded = settings()
    rules = rules or loaded.arrivals_rules or Path("arrivals.toml")
    outcomes = []
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        config = load_arrivals(rules)
        links: list[Path] = []
        settling: list[Path] = []
        others: list[Path] = []
        try:
            if path.is_dir():
                check_inbox(path)
                looked = scan(path, settle)
                files, links, settling = looked.files, looked.links, looked.settling
                others = looked.others
            else:
                check_inbox(path.parent)
                check_readable(path)
                files = [path]
        except (ArrivalFileError, InboxError) as exc:
            fail(str(exc), BAD_INPUT)
        outcomes = [
            FileOutcome(link, link, problem="a symbolic link: not read (regular files only)")
            for link in links
        ]
        outcomes += [
            FileOutcome(other, other, problem="not a regular file (a FIFO, a device …): not read")
            for other in others
        ]
        with _sending(runtime, loaded.embedded) as wait:
            worker = Ingest(runtime, config)
            try:
                outcomes += [take(worker, file) for file in files]
            except InboxError as exc:  # done/ or failed/ made a link meanwhile
                fail(str(exc), BAD_INPUT)
            wait()
    rows = [o.as_dict() for o in outcomes]
    left = [p.name for p in settling]
    if as_json:
        print_json({"files": rows, "settling": left})
    else:
        _table(rows)
        if left:  # not an error: the next run takes them
            out.print(
                f"{len(left)} file(s) left for the next run, changed in the last {settle:g} s "
                f"(still being copied?): {', '.join(left)}"
            )
    if any(r["problem"] or r.get("rejected") for r in rows):
        raise typer.Exit(FAILURE)


def _table(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title="Khách đến · arrivals", title_justify="left")
    for name in (
        "tệp · file",
        "đọc · read",
        "chào · welcomed",
        "bỏ qua · skipped",
        "loại · rejected",
    ):
        table.add_column(name, justify="left" if "file" in name else "right")
    for row in rows:
        if row["problem"]:
            table.add_row(row["file"], "", "", "", f"[red]{row['problem']}[/]")
            continue
        table.add_row(
            row["file"], *(fmt.count(row[k]) for k in ("read", "welcomed", "skipped", "rejected"))
        )
    out.print(table if rows else "no file ready in the inbox")


@contextmanager
def _sending(runtime: Any, embedded: bool) -> Iterator[Callable[[], None]]:
    """Embedded (no Redis): the welcomes due now are sent in this process before the
    command returns; those due later stay queued in the ledger (the next ingest, or `loa
    campaign resume`, sends them). With Redis, workers do it and nothing is waited for."""
    if not embedded:
        yield lambda: None
        return
    from worker.campaign.embedded import embedded_worker

    with embedded_worker(runtime) as broker:
        yield lambda: _drain_due(broker)


def _drain_due(broker: Any) -> None:
    """Wait until the queues of jobs due now are worked (delayed ones are left)."""
    for name, queue in broker.queues.items():
        if not name.endswith(".DQ"):
            queue.join()
