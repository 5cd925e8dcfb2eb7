"""``loa provider``: the provider instances' state."""

from __future__ import annotations

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
        from rich.table import Table

        table = Table("provider", "type", "rate/s", "burst", "state")
        for row in rows:
            state = (
                f"[red]{row['problem']}[/]"
                if row["problem"]
                else f"[yellow]halted: {row['halted']}[/]"
                if row["halted"]
                else "[green]ready[/]"
            )
            rate = row.get("rate_per_second")
            unit = " parts" if row.get("rate_unit") == "parts" else ""
            table.add_row(
                str(row["name"]),
                str(row["type"]),
                "unlimited" if rate is None else f"{fmt.value(rate)}{unit}",
                fmt.value(row.get("burst")),
                state,
            )
        out.print(table)
    if any(row["problem"] for row in rows):
        raise typer.Exit(BAD_INPUT)


@app.command("test")
def test_provider(
    name: Annotated[str, typer.Argument(help="The provider instance, as in the settings.")],
    to: Annotated[
        str | None,
        typer.Option(help="Also send one test SMS to this number (nothing is sent without it)."),
    ] = None,
    sender: Annotated[
        str | None, typer.Option(help="Brandname or sender for the test SMS (with --to).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a provider instance: its settings, then, without sending, whether it answers
    and takes the credentials, and what it says of the account (a balance in đồng, an
    account's status; a simulated carrier has nothing to check). Sends one SMS only with
    `--to`; that SMS is not part of any campaign and is not in the ledger.

    Exit codes: 0 all good, 1 the provider is unreachable, refuses the credentials, has
    nothing to send with (an empty balance, a suspended account) or refused the SMS,
    2 unusable settings or a bad number."""
    import asyncio

    import providers
    from campaigns.phones import PhoneRejected, mask, normalise
    from campaigns.text import segments

    loaded = settings(check_providers=False)
    instance = loaded.providers.get(name)
    if instance is None:
        known = ", ".join(sorted(loaded.providers))
        fail(f"unknown provider {name!r} (configured: {known})", BAD_INPUT)
    try:
        provider = providers.create(name, instance.model_dump())
    except providers.ProviderConfigError as exc:
        fail(f"settings: {provider_problem(exc)}", BAD_INPUT)
    outgoing = None
    if to is not None:
        try:
            number = normalise(to).e164
        except PhoneRejected as exc:
            fail(f"--to {to!r}: {exc.reason.value}", BAD_INPUT)
        text = TEST_TEXT.format(name=name)
        shape = segments(text)
        outgoing = providers.OutgoingMessage(
            0, number, text, sender or "Loa", shape.encoding, shape.parts, 1, _in_an_hour()
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
                    result["problem"] = f"the test SMS was refused: {error.kind.value} {error.code}"
            return result
        finally:
            await provider.aclose()

    result = asyncio.run(check())
    said = result.pop("said")
    if as_json:
        print_json(result)
    elif result["problem"]:
        err.print(f"[red]provider {name}: {result['problem']}[/]")
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


def _in_an_hour():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)


@app.command("resume")
def resume(
    name: Annotated[str, typer.Argument(help="The provider instance, as in the settings.")],
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
