"""``loa audit``: seal the ledger's events into their hash chain and verify it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_runtime, settings
from scripts.output import BAD_INPUT, FAILURE, err, errors_as_exit_codes, fail, out, print_json

app = typer.Typer(
    help="The tamper-evident log: every event chained by SHA-256 and a leaf of a Merkle "
    "tree (RFC 9162), with signed checkpoints (see ledger/chain.py, ledger/audit/).",
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
    held: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint you were given (`loa audit checkpoint --out`, a daily "
            "report's): the log now must extend it (repeatable).",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The verifier key to check signatures by (name+id+base64); default: the "
            "one of LOA_AUDIT_SIGNING_KEY, when set.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the chain and the Merkle tree from the events as they are now, check
    every checkpoint (its root, its signature), every earlier verdict and each checkpoint
    given with --checkpoint against them, and every message's row against its events;
    name the first broken link and everything else found altered. The verdict is
    recorded: reports show when the log was last verified. Exit 0 when all holds, 1 when
    something was altered, 2 for a checkpoint file or key that is not one."""
    from ledger.audit.verify import ForeignKey, verify_log
    from ledger.chain import record_verdict, seal_all

    loaded = settings()
    verifier = _verifier(loaded, key)
    checkpoints = [_read_checkpoint(path) for path in held or ()]
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        if seal_first:
            seal_all(runtime.engine)
        try:
            verdict = verify_log(runtime.engine, verifier, checkpoints)
        except ForeignKey as exc:
            fail(f"{exc} Nothing was recorded.", BAD_INPUT)
        record_verdict(runtime.engine, verdict)  # reports show the last one
    from ledger.redact import mask_url

    ledger = mask_url(loaded.ledger_url())
    if as_json:
        print_json(
            {**verdict.as_dict(), "signatures_checked": verifier is not None, "ledger": ledger}
        )
    else:
        out.print(f"sổ cái · ledger: {ledger}", markup=False, highlight=False)
        _say_verdict(verdict, verifier is not None)
    if not verdict.ok:
        raise typer.Exit(FAILURE)


def _say_verdict(verdict: Any, signed: bool) -> None:
    if verdict.broken is not None:
        broken = verdict.broken
        out.print(
            f"[red]bị sửa đổi · broken[/] at seal {fmt.value(broken.get('seq'))} "
            f"(event {fmt.value(broken.get('event_id'))}): {fmt.value(broken.get('reason'))}; "
            f"the {fmt.count(verdict.sealed)} links before it hold, up to {verdict.head}"
        )
    for problem in verdict.problems:
        out.print(f"[red]bị sửa đổi · altered[/]: {fmt.value(problem)}")
    if verdict.ok:
        out.print(
            f"[green]toàn vẹn · intact[/]: {fmt.count(verdict.sealed)} events, root "
            f"{_base64(verdict.root)}, {fmt.count(verdict.checkpoints)} checkpoints and "
            "verdicts held, "
            f"{fmt.count(verdict.messages)} messages agree with their events"
            + (f", {fmt.count(verdict.unsealed)} not sealed yet" if verdict.unsealed else "")
        )
    if not signed:
        out.print(
            "[yellow]chưa ký · unsigned[/]: no key to check the checkpoints' signatures by "
            "(set LOA_AUDIT_SIGNING_KEY, or give --key)"
        )


def _base64(hex_root: str) -> str:
    """A root as checkpoints write it (base64), for a person comparing the two."""
    import base64

    return base64.b64encode(bytes.fromhex(hex_root)).decode()


def _verifier(loaded: Any, key: str | None) -> tuple[str, bytes] | None:
    """The (name, public key) to check signatures by: --key, or the signing key's own."""
    from ledger.audit.checkpoints import BadKey, parse_verifier_key

    if key is not None:
        try:
            return parse_verifier_key(key)
        except BadKey as exc:
            fail(f"--key: {exc}", BAD_INPUT)
    return loaded.audit_key()


def _read_checkpoint(path: Path) -> Any:
    """A checkpoint file, or exit 2 naming the file and line."""
    from campaigns.files import UnsafePath, open_regular
    from ledger.audit.checkpoints import CheckpointError, parse

    try:
        with open_regular(path) as handle:
            raw = handle.read(64 * 1024 + 1)
        if len(raw) > 64 * 1024:
            raise CheckpointError("over 64 KiB: not a checkpoint")
        return parse(raw.decode("utf-8"))
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text: not a checkpoint", BAD_INPUT)
    except (CheckpointError, UnsafePath) as exc:
        fail(f"{path}: {exc}".replace(f"{path}: {path}: ", f"{path}: "), BAD_INPUT)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}", BAD_INPUT)


@app.command("keygen")
def keygen(as_json: JsonOption = False) -> None:
    """Make the Ed25519 key that signs the log's checkpoints. Set LOA_AUDIT_LOG_NAME
    first: the log's name is part of the verifier key. Put the secret in
    LOA_AUDIT_SIGNING_KEY (keep it as you keep the database's password: whoever holds it
    can sign); give the verifier key to the auditors once, through another channel than
    the exports (it checks, it cannot sign)."""
    import base64
    import os

    from ledger.audit.checkpoints import public_of, verifier_key

    name = settings().audit_log_name
    seed = os.urandom(32)
    secret = base64.b64encode(seed).decode()
    vkey = verifier_key(name, public_of(seed))
    if as_json:
        print_json({"LOA_AUDIT_SIGNING_KEY": secret, "verifier_key": vkey, "log": name})
        return
    out.print(f"LOA_AUDIT_SIGNING_KEY={secret}")
    out.print(f"khoá kiểm tra · verifier key (for the auditors): {vkey}")


@app.command("checkpoint")
def checkpoint(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write it to this new file, to hand over."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Seal pending events and sign a checkpoint of the whole log (its size, Merkle root
    and time) with LOA_AUDIT_SIGNING_KEY; print it, and the verifier key to check it by.
    The housekeeper signs one every LOA_AUDIT_CHECKPOINT_MINUTES; a checkpoint an auditor
    keeps pins the log: `loa audit verify --checkpoint FILE` proves the log still extends
    it."""
    from campaigns.files import create_private
    from ledger.audit.checkpoints import public_of, verifier_key
    from ledger.audit.log import LogBroken, make_checkpoint
    from ledger.chain import seal_all

    loaded = settings()
    seed = loaded.signing_seed()
    if seed is None:
        fail(
            "LOA_AUDIT_SIGNING_KEY is not set: a checkpoint must be signed (make a key with "
            "`loa audit keygen`)",
            BAD_INPUT,
        )
    if out_file is not None and (out_file.exists() or out_file.is_symlink()):
        fail(f"--out {out_file}: already there; a checkpoint goes to a new file", BAD_INPUT)
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        seal_all(runtime.engine)
        try:
            signed = make_checkpoint(runtime.engine, loaded.audit_log_name, seed)
        except LogBroken as exc:
            fail(f"{exc}: no checkpoint can be signed over it (see `loa audit verify`)", FAILURE)
    if out_file is not None:
        try:
            with create_private(out_file) as handle:  # a new name, no link followed
                handle.write(signed.text.encode())
        except OSError as exc:
            fail(f"--out {out_file}: {exc.strerror or exc} (the checkpoint is kept)", FAILURE)
    vkey = verifier_key(loaded.audit_log_name, public_of(seed))
    if as_json:
        print_json(
            {
                "size": signed.size,
                "root": signed.root.hex(),
                "time": signed.time,
                "checkpoint": signed.text,
                "verifier_key": vkey,
                "out": str(out_file) if out_file else None,
            }
        )
        return
    out.print(signed.text, end="", markup=False, highlight=False)
    out.print(f"khoá kiểm tra · verifier key: {vkey}", markup=False, highlight=False)


@app.command("export")
def export(
    folder: Annotated[
        Path, typer.Option("--out", "-o", help="A new (or empty) folder for the export.")
    ],
    campaign_id: Annotated[str, typer.Option("--campaign", "-c", help="The campaign's id.")],
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            help="A checkpoint the auditor already holds: the export then proves the log "
            "still extends it.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write what an auditor checks without trusting Loa or its database: the campaign's
    events, each with its proof of inclusion in the log, a checkpoint of the log signed
    now (LOA_AUDIT_SIGNING_KEY), each recipient's final state (numbers masked) and a
    stand-alone checker. The auditor runs `python3 verify_export.py --key VERIFIER_KEY`
    in the folder (Python's standard library, and cryptography or openssl)."""
    from ledger.audit.export import export as write_export

    loaded = settings()
    seed = loaded.signing_seed()
    if seed is None:
        fail(
            "LOA_AUDIT_SIGNING_KEY is not set: an export proves something only against a "
            "signed checkpoint (make a key with `loa audit keygen`)",
            BAD_INPUT,
        )
    held = _read_checkpoint(since) if since is not None else None
    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        manifest = write_export(
            runtime.engine, folder, campaign_id, loaded.audit_log_name, seed, held
        )
    if as_json:
        print_json({"out": str(folder), **manifest})
        return
    point = manifest["checkpoint"]
    out.print(
        f"xuất · exported {fmt.count(manifest['events'])} events, "
        f"{fmt.count(sum(manifest['statuses'].values()))} recipients to {folder}; "
        f"checkpoint {point['size']} events, root {point['root']}"
    )
    again = f" --since {since}" if since is not None else ""
    out.print(
        f"check it: python3 {folder / 'verify_export.py'} --key {manifest['verifier_key']}{again}",
        markup=False,
        highlight=False,
    )


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
