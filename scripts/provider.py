"""``loa provider``: the provider instances' state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from worker.settings import Settings

from scripts import formats as fmt
from scripts.common import JsonOption, provider_problem, settings
from scripts.output import BAD_INPUT, FAILURE, err, errors_as_exit_codes, fail, out, print_json

app = typer.Typer(
    help="Provider instances: their settings, a check without sending, halts and resuming.",
    no_args_is_help=True,
)

TEST_TEXT = "Loa: tin nhắn thử qua nhà cung cấp {name}. Xin bỏ qua tin này."


@app.command("list")
def list_providers(as_json: JsonOption = False) -> None:
    """The configured provider instances: type, agreed rate, and whether their settings
    are usable and they are halted. Exit 2 when one's settings are unusable."""
    from providers import ProviderConfigError, validate_config

    loaded = settings(check_providers=False)
    rows: list[dict[str, object]] = []
    halted = _halts(loaded)
    for name, instance in sorted(loaded.providers.items()):
        row: dict[str, object] = {"name": name, "type": instance.type, "halted": halted.get(name)}
        try:
            _, config = validate_config(name, instance.model_dump())
        except ProviderConfigError as exc:
            row["problem"] = provider_problem(exc)
        else:
            burst = config.burst
            if burst is None and config.rate_per_second is not None:
                from worker.sending.ratelimit import default_burst

                burst = default_burst(config.rate_per_second)  # what the bucket holds
            row |= {
                "rate_per_second": config.rate_per_second,
                "burst": burst,
                "rate_unit": config.rate_unit,
                "problem": None,
            }
        rows.append(row)
    if as_json:
        print_json(rows)
    else:
        _print_providers(rows)
    if any(row["problem"] for row in rows):
        raise typer.Exit(BAD_INPUT)


#: The providers table's column headers: Vietnamese over English.
HEADERS = {"type": "Loại\ntype", "rate/s": "Tốc độ\nrate/s", "burst": "Dồn\nburst"}


def _print_providers(rows: list[dict[str, object]]) -> None:
    """The providers' table, then each unusable one's problem on a line of its own (the
    variable to set, whole: never cut to fit a column), then which columns a narrow
    terminal left out."""
    from rich.markup import escape
    from rich.table import Table

    from scripts.tables import fit, left_out_note

    def build(hidden: frozenset[str]) -> Table:
        table = Table(title="Nhà cung cấp · providers", title_justify="left")
        table.add_column("Tên\nprovider", overflow="fold", min_width=8)
        shown = [key for key in ("type", "rate/s", "burst") if key not in hidden]
        for key in shown:
            table.add_column(HEADERS[key], justify="left" if key == "type" else "right")
        table.add_column("Trạng thái\nstate", overflow="fold", min_width=10)
        for row in rows:
            rate = row.get("rate_per_second")
            unit = " parts" if row.get("rate_unit") == "parts" else ""
            cells = {
                "type": str(row["type"]),
                "rate/s": "không giới hạn · unlimited"
                if rate is None
                else f"{fmt.value(rate)}{unit}",
                "burst": fmt.value(row.get("burst")),
            }
            state = (
                "[red]unusable settings (below)[/]"
                if row["problem"]
                else f"[yellow]halted: {escape(str(row['halted']))}[/]"
                if row["halted"]
                else "[green]sẵn sàng · ready[/]"
            )
            table.add_row(escape(str(row["name"])), *(cells[key] for key in shown), state)
        return table

    table, left_out = fit(build, ("burst", "type", "rate/s"))
    out.print(table)
    for row in rows:
        if row["problem"]:
            out.print(
                f"[red]{escape(str(row['name']))}:[/] {escape(str(row['problem']))}", soft_wrap=True
            )
    note = left_out_note(left_out)
    if note:
        out.print(note)


@app.command("test")
def test_provider(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The provider instance, as in the settings.")
    ],
    to: Annotated[
        str | None,
        typer.Option(
            metavar="NUMBER",
            help="Also send one test SMS to this number (nothing is sent without it).",
        ),
    ] = None,
    sender: Annotated[
        str | None,
        typer.Option(metavar="SENDER", help="Brandname or sender for the test SMS (with --to)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a provider instance: its settings, then, without sending, whether it answers
    and takes the credentials, and what it says of the account (a balance in đồng, an
    account's status; a simulated carrier has nothing to check). Sends one SMS only with
    `--to`; that SMS is not part of any campaign and is not in the ledger.

    Exit codes: 0 all good, 1 the provider is unreachable, refuses the credentials, has
    nothing to send with (an empty balance, a suspended account) or refused the SMS,
    2 unusable settings, a bad number or a sender no campaign could use."""
    import asyncio

    import providers
    from campaigns.phones import PhoneRejected, mask, mask_text, normalise
    from campaigns.text import segments
    from ledger.redact import redact

    loaded = settings(check_providers=False)
    instance = loaded.providers.get(name)
    if instance is None:
        known = ", ".join(sorted(loaded.providers))
        fail(f"unknown provider {name!r} (configured: {known})", BAD_INPUT)
    try:
        provider = providers.create(name, instance.model_dump())
    except providers.ProviderConfigError as exc:
        fail(f"settings: {provider_problem(exc)}", BAD_INPUT)
    if provider.keeps_tokens:  # renewed here, its new pair must be the workers' too
        from ledger.db import make_engine
        from ledger.migrate import ensure_current
        from worker.sending.tokens import LedgerTokens

        engine = make_engine(loaded.ledger_url())
        ensure_current(engine, auto=engine.url.get_backend_name() == "sqlite")
        provider.tokens = LedgerTokens(engine, name)
    if sender is not None:  # the rules a campaign's brandname meets, and this provider's
        from campaigns.spec import check_brandname

        longest = provider.limits.max_sender
        if longest is not None and len(sender) > longest:
            fail(
                f"--sender {sender!r} is {len(sender)} characters: provider {name!r} takes "
                f"a sender of at most {longest}",
                BAD_INPUT,
            )
        try:
            check_brandname(sender)
        except ValueError as exc:
            fail(f"--sender {sender!r}: {exc}", BAD_INPUT)
    outgoing = None
    if to is not None:
        try:
            phone = normalise(to)
        except PhoneRejected as exc:
            fail(f"--to {mask_text(to)!r}: {exc.reason.value}", BAD_INPUT)
        reach = provider.countries
        if reach is not None and phone.country not in reach:
            fail(
                f"--to: provider {name} reaches {', '.join(sorted(reach))}, "
                f"not {phone.country}: a campaign would never route this number to it",
                BAD_INPUT,
            )
        text = TEST_TEXT.format(name=name)
        shape = segments(text)
        # An id of its own for each test, outside the ledger's (which are positive): a
        # provider that keys idempotency on Loa's id would take a repeated one for a
        # resend of the last test and send nothing, while answering success.
        test_id = -time.time_ns() // 1000
        outgoing = providers.OutgoingMessage(
            test_id,
            phone.e164,
            text,
            sender or "Loa",
            shape.encoding,
            shape.parts,
            1,
            _in_an_hour(),
        )

    async def check() -> dict[str, object]:
        result: dict[str, object] = {"provider": name, "type": instance.type, "settings": "ok"}
        try:
            account = await provider.check_account()
            result["credentials"] = (
                "refused" if account.refused else "accepted" if account.checked else "unchecked"
            )
            result["account"] = dict(account.facts)
            result["said"] = account.said
            result["problem"] = account.problem
            if outgoing is not None and result["problem"] is None:
                result["to"] = mask(outgoing.to)
                try:
                    sent = await provider.send(outgoing)
                    result["sent"] = sent.provider_message_id
                except Exception as exc:  # classified, as the worker would
                    error = provider.classify(exc)
                    refused = f"{error.kind.value} {error.code}"
                    refused += f" ({error.detail})" if error.detail else ""
                    result["problem"] = (
                        f"the test SMS may have gone out (no clear answer): {refused}"
                        if error.kind is providers.ErrorKind.AMBIGUOUS
                        else f"the test SMS was refused: {refused}"
                    )
            return result
        finally:
            await provider.aclose()

    result = asyncio.run(check())
    # A provider's URL in an answer or an error can carry a password or a token.
    result = {k: redact(v) if isinstance(v, str) else v for k, v in result.items()}
    said = result.pop("said")
    result["halted"] = _halt_of(loaded, name)
    if as_json:
        print_json(result)
    elif result["problem"]:
        from rich.markup import escape

        # One line, whatever the provider answered (its words are not markup).
        err.print(
            f"[red]provider {escape(name)}: {escape(str(result['problem']))}[/]", soft_wrap=True
        )
    else:
        checked = {
            "accepted": "credentials accepted",
            "unchecked": "nothing to check",
        }[str(result["credentials"])]
        learned = f"; {said}" if said and result["credentials"] == "accepted" else ""
        sent = (
            f"; test SMS to {result['to']} accepted: {result['sent']}" if "sent" in result else ""
        )
        out.print(
            f"provider {name} ({instance.type}): settings ok, {checked}{learned}{sent}",
            markup=False,
            soft_wrap=True,
        )
    if result["halted"] and not as_json:  # the provider may be fine; campaigns still wait
        err.print(
            f"Cảnh báo · warning: provider {name} is halted ({result['halted']}): no campaign "
            f"sends through it until `loa provider resume {name}`",
            style="yellow", markup=False, soft_wrap=True,
        )  # fmt: skip
    if result["problem"]:
        raise typer.Exit(FAILURE)


def _halts(loaded: Settings) -> dict[str, str]:
    """The halted providers and why, from the ledger."""
    from ledger.halts import all_halts
    from worker.runtime import Runtime

    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            runtime.ensure_schema()
            return all_halts(runtime.engine)
        finally:
            runtime.close()


def _halt_of(loaded: Settings, name: str) -> str | None:
    """Why ``name`` is halted in the ledger, or ``None``: also when there is no ledger to
    ask (none made yet, or away), since a check of the provider must not depend on it."""
    from ledger.db import ledger_file
    from ledger.halts import halted
    from worker.runtime import Runtime

    file = ledger_file(loaded.ledger_url())
    if file is not None and not file.is_file():
        return None  # no ledger made yet: nothing halted, and none made to say so
    runtime = None
    try:
        runtime = Runtime(loaded)
        return halted(runtime.engine, name)
    except Exception:  # unreachable, not migrated: nothing to report
        return None
    finally:
        if runtime is not None:
            runtime.close()


def _in_an_hour():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)


@app.command("resume")
def resume(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The provider instance, as in the settings.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Let a halted provider send again, once its cause (credentials, balance …) is fixed,
    and put every batch waiting on it back on the queue. Exit 2 when it was not halted.
    Embedded, follow with `loa campaign resume ID` to send here."""
    from worker.campaign.control import resume_provider
    from worker.runtime import Runtime

    loaded = settings()
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            runtime.ensure_schema()
            runtime.provider(name)  # an unknown provider is bad input
            batches = resume_provider(runtime, name)
        finally:
            runtime.close()
    if as_json:
        print_json({"provider": name, "batches_enqueued": batches})
    else:
        out.print(f"provider {name} resumed: {fmt.count(batches)} waiting batches queued again")


@app.command("halts")
def halts(as_json: JsonOption = False) -> None:
    """Which providers are halted, and why."""
    found = _halts(settings())
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("no provider is halted")
    for name, reason in found.items():
        out.print(f"[bold]{name}[/]: halted, {reason}")
