"""``loa outcomes``: what a goal is measured by (issue #24), imported as it arrives:
counts per area and day, or the numbers that acted (``ledger.goals.outcomes``).

Exit codes: 0 imported (with ``--skip-bad``, the bad rows listed and skipped), 2 a goal,
population or outcome file refused (each bad row named by its row and field; nothing
imported), 1 the ledger cannot be reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_engine, settings
from scripts.output import BAD_INPUT, err, fail, out, print_json

app = typer.Typer(
    help="Outcomes a goal is measured by (installs of the app per district and day, or the "
    "numbers that installed it): imported as they arrive, a day imported again replacing it.",
    no_args_is_help=True,
)


@app.command("import")
def import_file(
    file: Annotated[
        Path, typer.Argument(help="CSV: area,date,count (or, --numbers, phone[,date]).")
    ],
    goal_file: Annotated[
        Path,
        typer.Option("--goal", help="The goal file (name, target, deadline, population)."),
    ],
    numbers: Annotated[
        bool,
        typer.Option(
            "--numbers",
            help="The file lists the numbers that acted: kept only as their keyed HMAC "
            "(LOA_RETENTION_KEY), never the number.",
        ),
    ] = False,
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad",
            help="Take the good rows and list the bad ones (default: refuse the whole file).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import a goal's outcomes. Counts: each row an area's new outcomes on a day (dates
    YYYY-MM-DD or DD/MM/YYYY); a day imported again replaces it, never adds twice.
    Refused, each named by row and field: an area the goal's population does not have, a
    date in the future, a count that is negative or not a whole number, counts adding up
    past an area's population. Every import is an event in the audit log.

    Examples:

    ```
    loa outcomes import cai-dat-2020-08-25.csv --goal bluezone-goal.toml
    loa outcomes import da-cai.csv --goal bluezone-goal.toml --numbers
    ```
    """
    from campaigns.goals import GoalError, load_goal, load_population
    from ledger.db import display_url
    from ledger.goals.outcomes import OutcomeError, import_counts, import_numbers

    if not file.exists():
        fail(f"{file}: no such file", BAD_INPUT)
    if not file.is_file():
        fail(f"{file}: not a regular file", BAD_INPUT)
    try:
        goal = load_goal(goal_file)
        population = load_population(goal_file.parent / goal.population)
    except GoalError as exc:
        fail(str(exc), BAD_INPUT)
    loaded = settings()
    key = loaded.retention_secret()
    if numbers and key is None:
        fail(
            "--numbers: LOA_RETENTION_KEY is not set. The numbers that acted are kept only "
            "as their keyed HMAC under that key, never whole: set it (at least 32 random "
            "characters, e.g. from `openssl rand -hex 24`) and keep it, as retention does",
            BAD_INPUT,
        )
    try:
        with ledger_engine(loaded) as engine:
            if numbers:
                assert key is not None
                done = import_numbers(engine, goal, file, key,
                                      skip_bad=skip_bad, source=file.name,
                                      population=population)  # fmt: skip
            else:
                done = import_counts(engine, goal, population, file, skip_bad=skip_bad,
                                     source=file.name)  # fmt: skip
    except OutcomeError as exc:
        for line in exc.rows[:50]:
            err.print(f"  {line}", markup=False, highlight=False)
        if len(exc.rows) > 50:
            err.print(f"  … {len(exc.rows) - 50} more")
        fail(str(exc), BAD_INPUT)
    if as_json:
        print_json({"goal": goal.name, **done.as_dict()})
        return
    for line in done.skipped[:50]:
        err.print(f"  bỏ qua · skipped: {line}", markup=False, highlight=False)
    if done.skipped_count > 50:
        err.print(f"  … {fmt.count(done.skipped_count - 50)} more", markup=False)
    again = (
        f"{fmt.count(done.replaced)} thay ngày cũ · replaced"
        if done.kind == "counts"
        else f"{fmt.count(done.replaced)} đã có hoặc lặp lại · known already or repeated"
    )
    out.print(
        f"{goal.name}: {fmt.count(done.rows_read)} dòng · rows read, "
        f"{fmt.count(done.taken)} mới · new, {again}, "
        f"{fmt.count(done.skipped_count)} bỏ qua · skipped; ngày · days: "
        f"{', '.join(done.days) or '–'}; sổ cái · ledger: {display_url(loaded.ledger_url())}",
        markup=False,
        highlight=False,
    )
    if not done.served_by:
        err.print(
            f"  lưu ý · note: no campaign in this ledger serves the goal {goal.name!r} yet: "
            "kept for the campaigns to come (is LOA_DATABASE_URL the ledger you meant?)",
            markup=False,
        )
