"""``loa audit``: seal the ledger's events into their hash chain and verify it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scripts.common import JsonOption, ledger_runtime, settings
from scripts.output import BAD_INPUT, FAILURE, errors_as_exit_codes, fail, out, print_json

app = typer.Typer(
    help="The tamper-evident log: every event chained by SHA-256 (see ledger/chain.py).",
    no_args_is_help=True,
)


@app.command("seal")
def seal(as_json: JsonOption = False) -> None:
    """Chain every event not sealed yet. Worker processes do this by themselves every few
    seconds; safe at any time (sealers take turns, the chain never forks)."""
    from ledger.chain import seal_all

    with errors_as_exit_codes(), ledger_runtime(settings()) as runtime:
        sealed = seal_all(runtime.engine)
    if as_json:
        print_json({"sealed": sealed})
        return
    out.print(f"đã niêm phong · sealed {sealed:,} events")


@app.command("verify")
def verify(
    seal_first: Annotated[
        bool,
        typer.Option(
            "--seal/--no-seal",
            help="Seal pending events first (append-only); --no-seal checks what is sealed.",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Recompute the whole chain from the events as they are now and name the first
    broken link (an event edited, deleted or moved; a seal removed). The verdict is
    recorded: reports show when the log was last verified. Exit 0 when the chain holds,
    1 when it is broken."""
    from ledger.chain import record_verdict, seal_all
    from ledger.chain import verify as recompute

    with errors_as_exit_codes(), ledger_runtime(settings()) as runtime:
        if seal_first:
            seal_all(runtime.engine)
        verdict = recompute(runtime.engine)
        record_verdict(runtime.engine, verdict)  # reports show the last one
    if as_json:
        print_json(verdict.as_dict())
    elif verdict.ok:
        out.print(
            f"[green]toàn vẹn · intact[/]: {verdict.sealed:,} events, head {verdict.head}"
            + (f", {verdict.unsealed:,} not sealed yet" if verdict.unsealed else "")
        )
    else:
        broken = verdict.broken or {}
        out.print(
            f"[red]bị sửa đổi · broken[/] at seal {broken.get('seq')} "
            f"(event {broken.get('event_id')}): {broken.get('reason')}; "
            f"the {verdict.sealed:,} links before it hold, up to {verdict.head}"
        )
    if not verdict.ok:
        raise typer.Exit(FAILURE)


@app.command("export")
def export(
    folder: Annotated[
        Path, typer.Option("--out", "-o", help="A new (or empty) folder for the export.")
    ],
    campaign_id: Annotated[
        str | None,
        typer.Option("--campaign", "-c", help="One campaign's id; without it, the whole ledger."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write what an auditor checks without trusting Loa: the sealed events with their
    links, each recipient's final state (numbers masked), a stand-alone checker and a
    manifest of SHA-256 sums and the chain head. The auditor runs `python3
    verify_export.py` in the folder (Python's standard library only)."""
    from ledger.export import export as write_export

    with errors_as_exit_codes(), ledger_runtime(settings()) as runtime:
        manifest = write_export(runtime.engine, folder, campaign_id)
    if as_json:
        print_json({"out": str(folder), **manifest})
        return
    head = manifest["chain_head"]
    out.print(
        f"xuất · exported {manifest['events']:,} events, "
        f"{sum(manifest['statuses'].values()):,} recipients to {folder}; "
        f"chain head {head['seq']} {head['hash']}"
    )
    out.print(f"check it: python3 {folder / 'verify_export.py'}")


retention_app = typer.Typer(
    help="Phone numbers kept no longer than needed (keyed HMAC after the retention period).",
    no_args_is_help=True,
)


@retention_app.command("apply")
def retention_apply(
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than", min=1, help="Days since a message ended (default LOA_RETENTION_DAYS)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the numbers of messages that ended more than the retention period ago by a
    keyed HMAC (LOA_RETENTION_KEY). Reports and exports then show the HMAC; the audit
    chain still verifies (events never hold a number); opt-out lists are kept."""
    from datetime import timedelta

    from ledger.retention import apply

    loaded = settings()
    if loaded.retention_key is None:
        fail(
            "LOA_RETENTION_KEY is not set: retention needs a key to replace numbers with", BAD_INPUT
        )
    days = older_than or loaded.retention_days
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        key = loaded.retention_key.get_secret_value()
        replaced = apply(runtime.engine, key, timedelta(days=days))
    if as_json:
        print_json({"replaced": replaced, "older_than_days": days})
        return
    out.print(f"đã ẩn số · replaced {replaced:,} numbers of messages ended over {days} days ago")
