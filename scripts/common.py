"""What every ``loa`` command shares: settings, progress bars, the ``--json`` option."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scripts.helptext import readable_help
from scripts.output import BAD_INPUT, err, fail, settings_problem

readable_help()  # every `loa … --help`: FILE, ID, DATE, not <str>, <bool>, {spec}

# Only what every command needs is imported here: `loa --help` must answer at once, so the
# settings, the ledger, the providers and rich's progress bars are imported by the
# commands that use them (benchmarks/cli_start.py measures it).
if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.engine import Engine

    from ledger.summary import CampaignSummary
    from providers import ProviderConfigError
    from worker.runtime import Runtime
    from worker.settings import Settings

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
]
PhoneColumn = Annotated[
    str | None,
    typer.Option(metavar="HEADER", help="Header of the phone column, when Loa cannot find it."),
]
Encoding = Annotated[
    str | None,
    typer.Option(
        metavar="ENCODING",
        help="Text encoding of a CSV/TSV list (utf-8, utf-16, cp1258 …) when Loa cannot tell.",
    ),
]
Sheet = Annotated[
    str | None,
    typer.Option(metavar="SHEET", help="Sheet of an XLSX list (default: the first)."),
]
Ported = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="CSV of ported numbers (number,carrier) overriding the allocation carrier.",
    ),
]
Rejects = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="Write rejected rows here (CSV: row, value, reason)."),
]


def settings(check_providers: bool = True) -> Settings:
    """The settings, with logging configured; a bad setting exits 2 naming the variable.
    Every provider instance's settings are checked too (``check_providers``), so missing
    credentials stop a command at start-up, not at its first send."""
    from pydantic import ValidationError

    from providers import ProviderConfigError, validate_config
    from worker.logging import configure_logging
    from worker.settings import get_settings

    try:
        loaded = get_settings()
    except ValidationError as exc:
        fail(f"settings: {settings_problem(exc)}", BAD_INPUT)
    configure_logging(loaded.log_level, loaded.log_format)
    if check_providers:
        for name, instance in loaded.providers.items():
            try:
                validate_config(name, instance.model_dump())
            except ProviderConfigError as exc:
                fail(f"settings: {provider_problem(exc)}", BAD_INPUT)
    return loaded


def quiet_in_process(loaded: Settings) -> None:
    """Jobs about to run in this process (``loa demo``, an embedded ``loa campaign
    launch`` or ``resume``): the worker logs every send error and retry at INFO, which
    would bury the progress bar and the table on stderr (a hundred JSON lines for a
    5.200-row list). WARNING and above only, unless LOA_LOG_LEVEL is set."""
    import os

    if "LOA_LOG_LEVEL" in os.environ or "log_level" in loaded.model_fields_set:
        return
    from worker.logging import configure_logging

    configure_logging("WARNING", loaded.log_format)


def provider_problem(exc: ProviderConfigError) -> str:
    """A provider instance's settings error, in the environment variables' own names."""
    prefix = f"LOA_PROVIDERS__{exc.instance.upper()}"
    return "; ".join(
        f"{prefix}__{field.upper()}: {problem}" if field else f"{prefix}: {problem}"
        for field, problem in exc.problems
    )


def progress() -> Progress:
    """A progress bar on stderr, shown only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err.console,
        transient=True,
        disable=not err.is_terminal,
    )


def follow(bar: Progress, description: str) -> Callable[[CampaignSummary], None]:
    """A callback moving a bar with a campaign's final statuses."""
    task = bar.add_task(description, total=None)

    def update(summary: CampaignSummary) -> None:
        bar.update(task, total=summary.recipients, completed=summary.final)

    return update


def counter(bar: Progress, description: str) -> Callable[[int], None]:
    """A callback advancing a bar of unknown length by a number of rows."""
    task = bar.add_task(description, total=None)
    return lambda n: bar.advance(task, n)


@contextmanager
def ledger_runtime(loaded: Settings) -> Iterator[Runtime]:
    """A runtime on a ledger at the current schema, closed however the command ends."""
    from worker.runtime import Runtime

    runtime = Runtime(loaded)
    try:
        runtime.ensure_schema()
        yield runtime
    finally:
        runtime.close()


@contextmanager
def ledger_engine(loaded: Settings | None = None) -> Iterator[Engine]:
    """The ledger for one command (``loaded``: its settings, read if not given): at the
    current schema, errors as exit codes (a URL the ledger cannot use: one line, masked),
    always closed."""
    from scripts.output import errors_as_exit_codes

    loaded = loaded or settings()  # first: importing the worker reads them
    from worker.runtime import Runtime

    with errors_as_exit_codes():
        runtime = Runtime(loaded)
    try:
        with errors_as_exit_codes():
            runtime.ensure_schema()
            yield runtime.engine
    finally:
        runtime.close()


def check_outputs(
    loaded: Settings, outputs: dict[str, Path | None], inputs: dict[str, Path | None]
) -> None:
    """Exit 2 before anything is read when a file a command would write is one it reads
    (``--rejects`` naming the list itself), the ledger (``--out var/loa.db`` replaced the
    whole ledger, audit chain included) or another of its outputs (one would silently
    replace the other). Compared as resolved paths, so ``./x.csv`` and a link to it are
    caught too; ``outputs`` and ``inputs``: option name -> path (``None``: not given)."""
    from ledger.db import ledger_file

    def where(path: Path) -> Path:
        return path.expanduser().resolve()

    def written(path: Path) -> Path:  # a link there is replaced, never followed
        path = path.expanduser()
        return path.parent.resolve() / path.name

    taken: dict[Path, str] = {}
    ledger = ledger_file(loaded.ledger_url())
    if ledger is not None:
        ledger = where(ledger)
        for suffix in ("", "-wal", "-shm", "-journal"):
            taken[ledger.with_name(ledger.name + suffix)] = "the ledger (LOA_DATABASE_URL)"
    for name, path in inputs.items():
        if path is not None:
            taken.setdefault(where(path), f"what {name} reads")
    for name, path in outputs.items():
        if path is None:
            continue
        target = written(path)
        if target in taken:
            fail(
                f"{name} {path} is {taken[target]}: writing there would replace it; "
                "name another file",
                BAD_INPUT,
            )
        taken[target] = f"where {name} writes too"
