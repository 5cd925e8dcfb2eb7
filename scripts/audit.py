"""``loa audit``: seal the ledger's events into their hash chain and verify it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_runtime, settings
from scripts.output import BAD_INPUT, FAILURE, err, errors_as_exit_codes, fail, out, print_json

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
    out.print(f"đã niêm phong · sealed {fmt.count(sealed)} events")


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
            f"[green]toàn vẹn · intact[/]: {fmt.count(verdict.sealed)} events, head {verdict.head}"
            + (f", {fmt.count(verdict.unsealed)} not sealed yet" if verdict.unsealed else "")
        )
    else:
        broken = verdict.broken or {}
        out.print(
            f"[red]bị sửa đổi · broken[/] at seal {fmt.value(broken.get('seq'))} "
            f"(event {fmt.value(broken.get('event_id'))}): {fmt.value(broken.get('reason'))}; "
            f"the {fmt.count(verdict.sealed)} links before it hold, up to {verdict.head}"
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
        f"xuất · exported {fmt.count(manifest['events'])} events, "
        f"{fmt.count(sum(manifest['statuses'].values()))} recipients to {folder}; "
        f"chain head {head['seq']} {head['hash']}"
    )
    out.print(f"check it: python3 {folder / 'verify_export.py'}")


retention_app = typer.Typer(
    help="Personal data kept no longer than needed: numbers become keyed HMACs, list "
    "fields, visitors and processed arrival files go, after the retention period.",
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
    inbox: Annotated[
        list[Path] | None,
        typer.Option(
            "--inbox",
            help="An arrivals inbox whose done/ and failed/ files past the period are removed "
            "(repeatable).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """After the retention period: replace the numbers of finished messages by a keyed
    HMAC (LOA_RETENTION_KEY) and drop their list fields but district, ward and language;
    key old receipts' digests; delete visitors and arrival event ids (after the arrivals
    window of LOA_ARRIVALS_RULES when shorter); with --inbox, remove processed arrival
    files. Reports and exports then show the HMAC; the audit chain still verifies (events
    never hold a number); opt-out lists are kept."""
    from ledger.retention import apply, check_key
    from worker.upkeep.retention import remove_old_files

    loaded = settings()
    if loaded.retention_key is None:
        fail(
            "LOA_RETENTION_KEY is not set: retention needs a key to replace numbers with "
            "(make one with `openssl rand -hex 24`, and keep it: only with it can a number "
            "still be looked up)",
            BAD_INPUT,
        )
    folders = list(inbox or [])
    for folder in folders:
        if not folder.is_dir():
            fail(f"--inbox {folder}: not a folder", BAD_INPUT)
    days = older_than or loaded.retention_days
    period = timedelta(days=days)
    with errors_as_exit_codes():
        check_key(loaded.retention_key.get_secret_value())  # before anything is touched
        window = _arrivals_window(loaded.arrivals_rules)
        with ledger_runtime(loaded) as runtime:
            key = loaded.retention_key.get_secret_value()
            applied = apply(runtime.engine, key, period, arrivals_window=window)
        files = remove_old_files(folders, period)
    if as_json:
        print_json(
            {
                "replaced": applied.numbers,
                **applied.as_dict(),
                "files": files.as_dict(),
                "older_than_days": days,
            }
        )
        return
    out.print(
        f"đã ẩn số · replaced {fmt.count(applied.numbers)} numbers and cleared the fields of "
        f"{fmt.count(applied.fields)} messages ended over {days} days ago; keyed {fmt.count(applied.receipts)} "
        f"receipt digests; forgot {fmt.count(applied.visitors)} visitors and "
        f"{fmt.count(applied.arrival_events)} arrival event ids; deleted "
        f"{fmt.count(applied.inbound)} messages from handsets; removed "
        f"{fmt.count(files.removed)} arrival files"
    )
    for skipped in files.skipped:
        out.print(f"[yellow]left alone[/]: {skipped}")


def _arrivals_window(rules: Path | None) -> timedelta | None:
    """The rules' dedupe window (``once_per_days``), when LOA_ARRIVALS_RULES names a
    usable rules file; otherwise none (the retention period applies): retention never
    waits for a rules file to be mended."""
    if rules is None:
        return None
    from campaigns.arrivals import load_arrivals
    from campaigns.spec import SpecError

    try:
        return load_arrivals(rules).rules.once_per
    except SpecError as exc:
        err.print(f"[yellow]warning:[/] {exc}; visitors are kept for the retention period")
        return None
