"""The ``loa`` command line. Thin: parse, call the packages, print.

Every command that reports something takes ``--json``. Exit codes: 0 success, 1 failure,
2 bad input (see ``scripts.output``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.db import describe_location, display_url
from ledger.summary import CampaignSummary
from scripts.output import (
    BAD_INPUT,
    FAILURE,
    err,
    errors_as_exit_codes,
    fail,
    out,
    print_json,
    settings_problem,
    summary_table,
)
from worker.logging import configure_logging
from worker.settings import Settings, get_settings

app = typer.Typer(
    name="loa",
    help=(
        "Loa: SMS campaigns for public notices, sent at each provider's rate, with a "
        "delivery ledger an auditor can trust.\n\n"
        "Start with `loa demo`. With no settings Loa runs embedded (SQLite under ./var, "
        "jobs in this process); set LOA_DATABASE_URL and LOA_REDIS_URL for production."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
campaign_app = typer.Typer(help="Launch campaigns and follow them.", no_args_is_help=True)
db_app = typer.Typer(help="The ledger's schema.", no_args_is_help=True)
config_app = typer.Typer(help="Effective settings.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
]


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        fail(f"settings: {settings_problem(exc)}", BAD_INPUT)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _follow(progress: Progress, description: str):
    task = progress.add_task(description, total=None)

    def update(summary: CampaignSummary) -> None:
        progress.update(task, total=summary.recipients, completed=summary.final)

    return update


def _report(summary: CampaignSummary, as_json: bool, title: str, extra: dict[str, object]) -> None:
    if as_json:
        print_json({**summary.as_dict(), **extra})
        return
    out.print(summary_table(summary, title))
    for key, value in extra.items():
        out.print(f"[bold]{key}:[/] {value}")


@app.command()
def demo(
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for final statuses.")] = 300,
) -> None:
    """Run the sample Bluezone campaign (5,200 synthetic residents of Ninh Thuận) through the
    sandbox carrier, in this process, and print where every recipient ended up.

    Needs no settings and no services: a fresh SQLite ledger is written to var/demo.db.
    """
    import os

    from worker.demo import run_demo

    settings = _settings()
    if "LOA_LOG_LEVEL" not in os.environ:
        configure_logging("WARNING", settings.log_format)  # the table is the demo's output
    with errors_as_exit_codes(), _progress() as progress:
        result = run_demo(settings, timeout=timeout, on_progress=_follow(progress, "Đang gửi"))
    summary = result.summary
    _report(
        summary,
        as_json,
        f"Chiến dịch {summary.campaign.id}",
        {"ledger": result.ledger, "seconds": round(result.seconds, 1)},
    )
    if not summary.done:
        raise typer.Exit(FAILURE)


@campaign_app.command("launch")
def campaign_launch(
    spec: Annotated[
        Path, typer.Argument(help="The campaign file (TOML); see examples/bluezone.toml.")
    ],
    recipients: Annotated[
        Path, typer.Option("--recipients", "-r", help="The recipient list (CSV, UTF-8).")
    ],
    phone_column: Annotated[
        str | None, typer.Option(help="Header of the phone column, when Loa cannot find it.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(help="Wait for final statuses (always, when jobs run in this process)."),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for final statuses.")] = 3600,
    as_json: JsonOption = False,
) -> None:
    """Check a campaign file and its list, record every recipient in the ledger, and queue
    the sending. Launching the same campaign id again adds nothing.

    Embedded (no LOA_REDIS_URL) the jobs run in this process until every recipient has a
    final status; with Redis they go to `loa worker` processes.
    """
    from worker.embedded import embedded_worker, wait_for_campaign
    from worker.launch import launch
    from worker.runtime import Runtime

    settings = _settings()
    with errors_as_exit_codes():
        runtime = Runtime(settings)
        try:
            if settings.embedded:
                with embedded_worker(runtime) as broker, _progress() as progress:
                    launched = launch(runtime, spec, recipients, phone_column=phone_column)
                    summary = wait_for_campaign(
                        runtime, broker, launched.campaign_id, timeout=timeout,
                        on_progress=_follow(progress, "Đang gửi"),
                    )  # fmt: skip
            else:
                launched = launch(runtime, spec, recipients, phone_column=phone_column)
                with _progress() as progress:
                    summary = wait_for_campaign(
                        runtime, None, launched.campaign_id, timeout=timeout if wait else 0,
                        on_progress=_follow(progress, "Đang gửi"),
                    )  # fmt: skip
        finally:
            runtime.close()
    extra: dict[str, object] = {
        "launched": launched.created,
        "batches_enqueued": launched.batches_enqueued,
        "ledger": describe_location(runtime.engine),
    }
    if not launched.created:
        err.print(f"campaign {launched.campaign_id} was already launched: nothing added")
    _report(summary, as_json, f"Chiến dịch {summary.campaign.id}", extra)
    if (settings.embedded or wait) and not summary.done:
        raise typer.Exit(FAILURE)


@campaign_app.command("status")
def campaign_status(
    campaign_id: Annotated[str, typer.Argument(help="The campaign's id, as in its file.")],
    as_json: JsonOption = False,
) -> None:
    """Show a campaign's intake counts and how many recipients are in each status."""
    from ledger.summary import summarise
    from worker.runtime import Runtime

    settings = _settings()
    with errors_as_exit_codes():
        runtime = Runtime(settings)
        try:
            runtime.ensure_schema()
            summary = summarise(runtime.engine, campaign_id)
        finally:
            runtime.close()
    _report(summary, as_json, f"Chiến dịch {campaign_id}", {"state": summary.progress_state})


@app.command()
def worker(
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queues", "-Q", help="Queues to work (default: every provider's and receipts)."
        ),
    ] = None,
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process.")] = 8,
) -> None:
    """Run dramatiq worker processes on Redis (production). Run as many as you like, on
    as many machines: they share the queues and the ledger."""
    settings = _settings()
    if settings.embedded:
        fail(
            "loa worker needs LOA_REDIS_URL; without Redis, `loa campaign launch` runs the jobs itself",
            BAD_INPUT,
        )
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from worker.broker import RECEIPTS_QUEUE, queue_for

    names = queues or [*(queue_for(p) for p in settings.providers), RECEIPTS_QUEUE]
    argv = [
        "worker.actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *names,
    ]
    raise typer.Exit(dramatiq_main(make_argument_parser().parse_args(argv)) or 0)


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Create or migrate the ledger's tables to this version of Loa."""
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    settings = _settings()
    with errors_as_exit_codes():
        engine = make_engine(settings.ledger_url())
        try:
            before, after = upgrade(engine)
        finally:
            engine.dispose()
    result = {"ledger": describe_location(engine), "from": before, "to": after}
    if as_json:
        print_json(result)
    else:
        out.print(f"ledger {result['ledger']}: {before or 'empty'} -> {after}")


@config_app.command("show")
def config_show(as_json: JsonOption = False) -> None:
    """Print the effective settings (environment and defaults), secrets masked. Exits 2
    when a provider's settings are invalid, naming the provider and the field."""
    import providers

    settings = _settings()
    shown: dict[str, object] = {
        "mode": "embedded" if settings.embedded else "redis",
        "database_url": display_url(settings.ledger_url()),
        "redis_url": display_url(settings.redis_url.get_secret_value())
        if settings.redis_url
        else None,
        "redis_namespace": settings.redis_namespace,
        "var_dir": str(settings.var_dir),
        "batch_size": settings.batch_size,
        "worker_threads": settings.worker_threads,
        "max_attempts": settings.max_attempts,
        "log_level": settings.log_level,
        "log_format": settings.log_format,
    }
    problems = []
    provider_view: dict[str, object] = {}
    for name, raw in settings.providers.items():
        try:
            _, config = providers.validate_config(name, raw.model_dump())
            provider_view[name] = config.model_dump(mode="json")
        except providers.ProviderConfigError as exc:
            provider_view[name] = {"error": str(exc)}
            problems.append(str(exc))
    shown["providers"] = provider_view
    if as_json:
        print_json(shown)
    else:
        for key, value in shown.items():
            if key != "providers":
                out.print(f"[bold]{key}[/] = {value}")
        for name, view in provider_view.items():
            out.print(f"[bold]providers.{name}[/] = {view}")
    if problems:
        raise typer.Exit(BAD_INPUT)


def main() -> None:
    """Entry point of the ``loa`` console script."""
    app()
