"""``loa provider``: the provider instances' state."""

from __future__ import annotations

from typing import Annotated

import typer

from scripts.common import JsonOption, settings
from scripts.output import errors_as_exit_codes, out, print_json

app = typer.Typer(help="Provider instances: halts and resuming.", no_args_is_help=True)


@app.command("resume")
def resume(
    name: Annotated[str, typer.Argument(help="The provider instance, as in the settings.")],
    as_json: JsonOption = False,
) -> None:
    """Let a halted provider send again, once its cause (credentials, balance …) is fixed,
    and put every batch waiting on it back on the queue. Exit 2 when it was not halted.
    Embedded, follow with `loa campaign resume ID` to send here."""
    from worker.control import resume_provider
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
        out.print(f"provider {name} resumed: {batches:,} waiting batches queued again")


@app.command("halts")
def halts(as_json: JsonOption = False) -> None:
    """Which providers are halted, and why."""
    from ledger.halts import all_halts
    from worker.runtime import Runtime

    loaded = settings()
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            runtime.ensure_schema()
            found = all_halts(runtime.engine)
        finally:
            runtime.close()
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("no provider is halted")
    for name, reason in found.items():
        out.print(f"[bold]{name}[/]: halted, {reason}")
