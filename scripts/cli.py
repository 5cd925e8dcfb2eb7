"""The ``loa`` command line. Thin: parse, call the packages, print.

Every command that reports something takes ``--json``. Exit codes: 0 success, 1 failure,
2 bad input (see ``scripts.output``).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from scripts import (
    arrivals,
    audit,
    campaign,
    deadletters,
    lists,
    outcomes,
    provider,
    recipient,
    text,
    users,
)
from scripts.common import (
    JsonOption,
    follow,
    ledger_runtime,
    progress,
    provider_problem,
    quiet_in_process,
    settings,
)
from scripts.output import (
    BAD_INPUT,
    FAILURE,
    err,
    errors_as_exit_codes,
    fail,
    out,
    print_json,
    report,
)
from scripts.reports.command import report as report_command
from scripts.scheduler import scheduler as scheduler_command

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
db_app = typer.Typer(help="The ledger's schema.", no_args_is_help=True)
config_app = typer.Typer(help="Effective settings.", no_args_is_help=True)
app.add_typer(campaign.app, name="campaign")
app.add_typer(lists.recipients_app, name="recipients")
app.add_typer(recipient.app, name="recipient")
app.add_typer(lists.suppress_app, name="suppress")
app.add_typer(text.app, name="text")
app.add_typer(provider.app, name="provider")
app.add_typer(deadletters.app, name="dead-letters")
app.add_typer(audit.app, name="audit")
app.add_typer(arrivals.app, name="arrivals")
app.add_typer(users.app, name="users")
app.add_typer(outcomes.app, name="outcomes")
app.command("scheduler")(scheduler_command)
app.add_typer(audit.retention_app, name="retention")
app.command("report")(report_command)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


@app.command()
def demo(
    as_json: JsonOption = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for final statuses.")] = 300,
) -> None:
    """Run the sample Bluezone campaign (5,200 synthetic residents of Ninh Thuận) through the
    sandbox carrier, in this process, and print where every recipient ended up.

    Needs no settings and no services: a fresh SQLite ledger is written to var/demo.db.
    """
    from worker.campaign.demo import run_demo

    loaded = settings()
    quiet_in_process(loaded)  # the table is the demo's output
    with errors_as_exit_codes(), progress() as bar:
        result = run_demo(loaded, timeout=timeout, on_progress=follow(bar, "Đang gửi"))
    summary = result.summary
    report(
        summary,
        as_json,
        f"Chiến dịch {summary.campaign.id}",
        {"ledger": result.ledger, "seconds": round(result.seconds, 1)},
    )
    if not summary.done:
        raise typer.Exit(FAILURE)


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
    """Run worker processes on Redis (production), as many as you like on as many
    machines: they share the queues, the ledger and each provider's rate limit. A
    housekeeping process beside them gives a dead worker's jobs and rows back, seals the
    audit log, applies stored receipts and runs the finaliser; a small supervisor starts
    again any of them that dies (1 s, then up to 30 s while it keeps dying) and stops
    them all on SIGTERM or Ctrl-C (the workers finish the batches they hold, up to 60 s).
    Metrics: http://LOA_METRICS_HOST:LOA_METRICS_PORT/metrics (127.0.0.1:9191 by default)."""
    loaded = settings()
    if loaded.embedded:
        fail(
            "loa worker needs LOA_REDIS_URL; without Redis, `loa campaign launch` runs the jobs itself",
            BAD_INPUT,
        )
    # Metrics: every child writes to a multiprocess directory of prometheus-client, a
    # fresh one per run (no stale counters), served by the metrics child. Set before any
    # child starts: they inherit it.
    import os
    import shutil
    import tempfile

    _check_worker_places(loaded)
    directory = tempfile.mkdtemp(prefix="loa-metrics-")
    os.environ["dramatiq_prom_db"] = directory  # noqa: SIM112 - dramatiq names it so
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from worker.processes.supervisor import Supervisor, mark_dead, worker_children
    from worker.queues.broker import RECEIPTS_QUEUE, queue_for

    names = queues or [*(queue_for(p) for p in loaded.providers), RECEIPTS_QUEUE]
    metrics = (loaded.metrics_host, loaded.metrics_port) if loaded.metrics_port else None
    children = worker_children(processes, threads, names, metrics)
    try:
        code = Supervisor(children, on_death=mark_dead(directory)).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    raise typer.Exit(code)


def _check_worker_places(loaded) -> None:
    """What a worker needs of this machine, checked before anything starts (exit 2, one
    line): the metrics address free to listen on, and the spool folder writable (without
    it, provider ids received while the ledger is away would be lost)."""
    from worker.sending.spool import Spool

    if loaded.metrics_port:
        problem = _cannot_listen(loaded.metrics_host, loaded.metrics_port)
        if problem:
            where = f"{loaded.metrics_host}:{loaded.metrics_port}"
            fail(
                f"LOA_METRICS_HOST/LOA_METRICS_PORT: cannot listen on {where} ({problem}); "
                "another loa worker here needs another port (0: no metrics)",
                BAD_INPUT,
            )
    spool = Spool(loaded.var_dir / "spool")
    try:
        spool.check_writable()
    except OSError as exc:
        fail(f"LOA_VAR_DIR: the spool folder {spool.directory} is not usable ({exc})", BAD_INPUT)


def _serving_runtime(loaded: Any, host: str, port: int) -> Any:
    """The runtime of a server on ``host:port``: exit 1 when the port cannot be listened
    on (said before anything is opened), the ledger checked to be current."""
    from worker.runtime import Runtime

    problem = _cannot_listen(host, port)
    if problem:
        fail(f"cannot listen on {host}:{port} ({problem}): --port", FAILURE)
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        runtime.ensure_schema()
    return runtime


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on (an internal one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
) -> None:
    """Serve the HTTP API for other systems and people (`/v1/…`; its description at
    `/openapi.json`, the docs page at `/docs`): campaigns (list, status, plan and launch
    from uploaded files, pause, resume, cancel), reports, one number's history,
    suppressions, the audit log, providers. Every route needs `Authorization: Bearer
    TOKEN` (`loa users token NAME`) and a role: an auditor reads, verifies and exports,
    an operator also launches and changes. Long work (a plan, a launch, a report) answers
    202 and a job to follow (`/v1/jobs/ID`). Errors are RFC 9457 problem details. It
    belongs on an internal network, apart from `loa webhook`. Embedded (no Redis) it
    sends what it launches itself. Exit 1: a port taken."""
    loaded = settings(check_providers=True)
    import uvicorn

    from scripts.api.app import make_app

    runtime = _serving_runtime(loaded, host, port)
    err.print(f"loa api: http://{host}:{port} (/openapi.json, /docs)")
    try:
        uvicorn.run(make_app(runtime), host=host, port=port, access_log=False, log_level="warning")
    finally:
        runtime.close()


@app.command()
def webhook(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    drain: Annotated[
        bool | None,
        typer.Option(
            "--drain/--no-drain",
            help="Also apply stored receipts to their messages in this process (default "
            "when embedded; with Redis, `loa worker` processes do it).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes serving requests (one core each).")
    ] = 1,
) -> None:
    """Serve the receipt routes (`/receipts/NAME` for each provider instance), `POST
    /arrivals` (with LOA_ARRIVALS_RULES and LOA_ARRIVALS_API_KEY) and `/healthz`. A
    receipt is answered 2xx only once it is in the ledger; requests that fail the
    provider's check (signature, token) get 403 and store nothing, and an address that
    keeps failing gets 429. Run it behind a TLS reverse proxy (docs/deploy/reverse-proxy.md);
    set each provider's public callback URL in its settings. Metrics are not on this port:
    http://LOA_METRICS_HOST:LOA_WEBHOOK_METRICS_PORT/metrics (by default 127.0.0.1:9192;
    the address in use is printed at start). Exit 2:
    bad settings (a rules file that cannot be read, rules without a key); 1: a port taken."""
    loaded = settings(check_providers=True)  # first: importing the worker reads them
    from worker.web.webhook import serve

    arrivals = _arrivals_config(loaded)
    runtime = _serving_runtime(loaded, host, port)
    with errors_as_exit_codes():
        if arrivals is not None:  # its provider and routes configured here
            from worker.arrivals.ingest import Ingest

            Ingest(runtime, arrivals)
    metrics = loaded.webhook_metrics_port
    err.print(
        f"loa webhook: http://{host}:{port}"
        + (f", metrics http://{loaded.metrics_host}:{metrics}/metrics" if metrics else "")
        + (", POST /arrivals" if loaded.arrivals_rules else "")
    )
    try:
        serve(
            runtime, host, port, drain=loaded.embedded if drain is None else drain, workers=workers
        )
    except OSError as exc:  # the metrics address taken or not ours
        where = f"{loaded.metrics_host}:{loaded.webhook_metrics_port}"
        fail(f"cannot serve metrics on {where} ({exc.strerror}): LOA_WEBHOOK_METRICS_PORT", FAILURE)
    finally:
        runtime.close()


def _arrivals_config(loaded: Any) -> Any:
    """The rules ``POST /arrivals`` takes (``None`` when not configured), or the webhook
    does not start: a rules file that cannot be read would answer every batch with an
    error, and rules without a key every caller with 401."""
    if loaded.arrivals_rules is None:
        return None
    from campaigns.arrivals import load_arrivals

    if loaded.arrivals_api_key is None:
        fail("LOA_ARRIVALS_RULES is set but LOA_ARRIVALS_API_KEY is not: callers need a key")
    with errors_as_exit_codes():
        return load_arrivals(loaded.arrivals_rules)


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now, or ``None`` (checked before anything
    starts, so that the answer is one line, not a server's own words and exit code)."""
    import socket

    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return str(exc.strerror or exc)


@app.command()
def finalise(as_json: JsonOption = False) -> None:
    """Settle what nobody will report: `sent` with no final receipt after the provider's
    RECEIPT_WINDOW_HOURS (72 by default) -> unknown (a later receipt still corrects it);
    `queued` past the campaign's validity -> expired. Worker processes do this every five
    minutes; safe at any time, from cron or by hand."""
    from worker.upkeep.housekeeping import finalise_now

    with errors_as_exit_codes(), ledger_runtime(settings()) as runtime:
        result = finalise_now(runtime)
    if as_json:
        print_json(result)
        return
    from scripts.formats import count

    out.print(
        f"Không rõ · unknown {count(result['unknown'])}, "
        f"hết hạn · expired {count(result['expired'])}"
    )


@app.command()
def reap(as_json: JsonOption = False) -> None:
    """Settle messages a dead worker left `sending` for longer than LOA_SENDING_LEASE_SECONDS:
    never handed to the provider -> queued and sent again; handed -> unknown (never resent
    blindly), or queued again where the provider's idempotency key makes a resend safe.
    Also enqueues again the batches of messages given back (a Redis outage) that no job
    came for within the lease. `loa worker` does this by itself; safe to run at any time,
    from cron or by hand."""
    from scripts.formats import count
    from worker.upkeep.recovery import reap_stale

    loaded = settings()
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        result = reap_stale(runtime)
    if as_json:
        print_json(result)
        return
    out.print(
        f"gửi lại · requeued {count(result['requeued'])} (trong · in {count(result['batches'])} "
        f"lô · batches), không rõ · unknown {count(result['unknown'])}, tin của lô bị bỏ sót "
        f"được xếp lại · stranded messages enqueued again {count(result['stranded'])}"
    )
    if loaded.embedded and result["requeued"]:
        out.print("embedded: send them with `loa campaign resume ID`")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Create or migrate the ledger's tables to this version of Loa."""
    from ledger.db import describe_location, make_engine
    from ledger.migrate import upgrade

    loaded = settings()
    with errors_as_exit_codes():
        engine = make_engine(loaded.ledger_url())
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
    from ledger.db import display_url
    from ledger.redact import mask_url

    loaded = settings(check_providers=False)
    shown: dict[str, object] = {
        "mode": "embedded" if loaded.embedded else "redis",
        # Passwords masked wherever the URL carries one: userinfo or query (?password=).
        "database_url": display_url(loaded.ledger_url()),
        "redis_url": mask_url(loaded.redis_url.get_secret_value()) if loaded.redis_url else None,
    }
    # Every other setting as it is (none of them secret): a new one shows up by itself.
    for name in type(loaded).model_fields:
        if name not in ("database_url", "redis_url", "providers"):
            value = getattr(loaded, name)
            plain = value is None or isinstance(value, int | float | str | bool)
            shown[name] = value if plain else str(value)  # unset: null, not "None"
    # uvicorn's, not Loa's: who may set X-Forwarded-For (docs/deploy/reverse-proxy.md)
    shown["forwarded_allow_ips"] = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    problems = []
    provider_view: dict[str, object] = {}
    for name, raw in loaded.providers.items():
        try:
            _, config = providers.validate_config(name, raw.model_dump())
            # A base or callback URL can carry a password or a token (user:pw@, ?token=).
            provider_view[name] = {
                field: mask_url(value) if isinstance(value, str) and "://" in value else value
                for field, value in config.model_dump(mode="json").items()
            }
        except providers.ProviderConfigError as exc:
            provider_view[name] = {"error": provider_problem(exc)}
            problems.append(str(exc))
    shown["providers"] = provider_view
    if as_json:
        print_json(shown)
    else:
        from rich.markup import escape

        from scripts.formats import setting

        # One setting a line, as the environment would set it (true, a list, "—" unset).
        for key, value in shown.items():
            if key != "providers":
                out.print(f"[bold]{key}[/] = {escape(setting(value))}")
        for name, view in provider_view.items():
            for field, value in view.items():  # type: ignore[attr-defined]
                out.print(f"[bold]providers.{name}.{field}[/] = {escape(setting(value))}")
    if problems:
        raise typer.Exit(BAD_INPUT)


def main() -> None:
    """Entry point of the ``loa`` console script. Settings are read where a command
    needs them; a bad one met first while importing (the worker's broker reads them)
    still ends as one line naming the variable, exit 2, never a traceback."""
    import sys

    # typer 0.29 carries its own copy of click: its errors are these, not click's.
    from typer._click import exceptions as click_errors

    for place, arg in enumerate(sys.argv[1:], start=1):
        # Python hands bytes that are not UTF-8 over as lone surrogates; no file, id or
        # text of Loa's can hold them, and the ledger would refuse them with a traceback.
        if any("\ud800" <= ch <= "\udfff" for ch in arg):
            print(
                f"error: argument {place} is not UTF-8 text: write it in UTF-8 (a shell "
                "set to another encoding, or bytes pasted from elsewhere)",
                file=sys.stderr,
            )
            raise SystemExit(BAD_INPUT)
    try:
        # Not standalone: click's usage errors come back here to be said in one line
        # (typer would draw them in a box over several), and exit codes as values.
        code = app(standalone_mode=False, prog_name="loa")
    except click_errors.NoArgsIsHelpError:  # `loa` or `loa campaign` alone: the help
        app(prog_name="loa")
    except click_errors.ClickException as exc:  # a usage error: exit 2
        where = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) else ""
        try:
            fail(f"{exc.format_message().replace('Value error, ', '')}{where}", exc.exit_code)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    except typer.Abort:  # end of input at a prompt
        print("\naborted", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        # Looked up, not imported: only a command that read the settings can have raised
        # these, and importing pydantic here would slow every `loa --help`.
        validation = getattr(sys.modules.get("pydantic"), "ValidationError", None)
        refused = getattr(sys.modules.get("worker.settings"), "SettingsError", None)
        if validation is not None and isinstance(exc, validation):
            from scripts.output import settings_problem

            problem = settings_problem(exc)
        elif refused is not None and isinstance(exc, refused):
            problem = str(exc)
        else:
            raise
        try:
            fail(f"settings: {problem}", BAD_INPUT)
        except typer.Exit as done:  # outside the app: exit as it would have
            raise SystemExit(done.exit_code) from None
    else:
        if isinstance(code, int):  # typer.Exit(code) inside a command
            raise SystemExit(code)
