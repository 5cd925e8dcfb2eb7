"""``loa dead-letters``: jobs dramatiq gave up on, listed and run again."""

from __future__ import annotations

from typing import Annotated

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, settings
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json

app = typer.Typer(
    help="Jobs dramatiq gave up on (Redis only): list them, run them again.", no_args_is_help=True
)


def _broker_and_queues():
    loaded = settings()
    if loaded.embedded:
        fail(
            "dead letters live in Redis: set LOA_REDIS_URL (embedded jobs end with their process)",
            BAD_INPUT,
        )
    from worker.queues.broker import RECEIPTS_QUEUE, build_broker, queue_for

    return build_broker(loaded), [*(queue_for(p) for p in loaded.providers), RECEIPTS_QUEUE]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Every dead job, oldest first: queue, id, actor, arguments, when, last error."""
    from worker.queues.deadletters import dead_letters

    broker, queues = _broker_and_queues()
    with errors_as_exit_codes():  # Redis away or refusing: one line, exit 1
        found = dead_letters(broker, queues)
    if as_json:
        print_json([d.as_dict() for d in found])
        return
    if not found:
        out.print("không có tin lỗi chờ xử lý · no dead letters")
    for dead in found:
        out.print(
            f"{dead.failed_at:%Y-%m-%d %H:%M:%S} {dead.queue} {dead.message_id} "
            f"{dead.actor}({', '.join(fmt.NOTHING if a is None else str(a) for a in dead.args)}) "
            f"{dead.error or ''}",
            markup=False,
        )


@app.command("requeue")
def requeue_(
    message_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids to run again (see `list`).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every dead job again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Put dead jobs back on their queues with their retries reset. Safe: a batch claims
    its messages before sending, so nothing already sent goes out twice."""
    from worker.queues.deadletters import requeue

    if not message_ids and not all_:
        fail("name the jobs to requeue, or pass --all", BAD_INPUT)
    broker, queues = _broker_and_queues()
    with errors_as_exit_codes():
        count = requeue(broker, queues, None if all_ else set(message_ids or ()))
    if as_json:
        print_json({"requeued": count})
    else:
        out.print(f"requeued {fmt.count(count)} jobs")
    if message_ids and count < len(message_ids):
        raise typer.Exit(BAD_INPUT)
