"""``loa campaign``: plan, launch and follow campaigns."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scripts import formats as fmt
from scripts.campaign_followup import follow_up
from scripts.campaign_list import list_campaigns
from scripts.common import (
    Encoding,
    JsonOption,
    PhoneColumn,
    Ported,
    Rejects,
    Sheet,
    check_outputs,
    counter,
    follow,
    progress,
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

if TYPE_CHECKING:
    from campaigns.plan import PlanSummary
    from worker.settings import Settings

app = typer.Typer(help="Plan campaigns, launch them and follow them.", no_args_is_help=True)
app.command("list")(list_campaigns)
app.command("follow-up")(follow_up)

SpecArg = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="The campaign file (TOML); see examples/bluezone.toml."),
]
RecipientsOpt = Annotated[
    Path,
    typer.Option(
        "--recipients", "-r", metavar="FILE", help="The recipient list: CSV, TSV or XLSX."
    ),
]


EvenIfExpired = Annotated[
    bool,
    typer.Option(
        "--even-if-expired",
        help="Go on although the validity ends before the first sending hour (every "
        "message would expire unsent).",
    ),
]


Reach = Annotated[
    float | None,
    typer.Option(
        "--reach",
        min=0.0,
        max=1.0,
        help="For a campaign with several channels: the share of recipients (0-1) you "
        "expect the channels before the SMS to reach; the plan then shows the expected cost "
        "and what it saves against SMS for everyone, beside the worst case.",
    ),
]


def _check_paths(
    loaded: Settings, spec: Path, recipients: Path, ported: Path | None, rejects: Path | None
) -> None:
    """``--rejects`` must not be the list, the campaign file, the ported numbers or the
    ledger (exit 2 before anything is read)."""
    check_outputs(
        loaded,
        {"--rejects": rejects},
        {"the campaign file": spec, "the list (--recipients)": recipients, "--ported": ported},
    )


def _check_sendable(spec: Path, start: datetime | None, go_on: bool) -> None:
    """Stop (exit 2) when no message could go out before its validity ends, unless told
    to go on: a campaign launched at 21:50 with a 6 h validity and hours from 07:00
    would expire whole, and only the worker's log would say why."""
    from campaigns.hours import VIETNAM
    from campaigns.spec import load_spec
    from ledger.schema import now

    with errors_as_exit_codes():
        loaded_spec = load_spec(spec)
    moment = start or now()
    unsent = loaded_spec.expires_unsent(moment)
    if unsent is None:
        return
    first, end = (t.astimezone(VIETNAM) for t in unsent)
    why = (
        f"{spec}: every message would expire unsent: the validity "
        f"({fmt.duration(loaded_spec.validity.total_seconds())}) ends at {end:%H:%M %d/%m}, "
        f"before the sending hours open at {first:%H:%M %d/%m} (Vietnam)"
    )
    if go_on:  # told to go on: said all the same, so nobody wonders later
        err.print(
            f"Cảnh báo · warning: {why}; going on (--even-if-expired).",
            style="yellow", markup=False, soft_wrap=True,
        )  # fmt: skip
        return
    fail(
        f"{why}. Launch later, lengthen `validity`, widen `sending_hours`, or pass "
        "--even-if-expired.",
        BAD_INPUT,
    )


@app.command("plan")
def plan(
    spec: SpecArg,
    recipients: RecipientsOpt,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    ported: Ported = None,
    rejects: Rejects = None,
    even_if_expired: EvenIfExpired = False,
    reach: Reach = None,
    as_json: JsonOption = False,
) -> None:
    """A dry run: read the list as a launch would and show what would be sent, per
    provider and carrier, with parts and estimated cost; with several channels (Zalo,
    then SMS), per channel, the worst case (everyone on SMS) and, with --reach, the
    expected case. Nothing is written or queued. Exit 2 when the validity would end
    before the first sending hour."""
    from campaigns.stream import RejectsFile
    from worker.campaign.planning import ListOptions, plan_figures, prepare
    from worker.runtime import Runtime

    loaded = settings()
    _check_paths(loaded, spec, recipients, ported, rejects)
    _check_sendable(spec, None, even_if_expired)
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            prepared = prepare(
                runtime, spec, recipients, ListOptions(phone_column, encoding, sheet, ported)
            )
            with progress() as bar:
                tick = counter(bar, "Đang đọc danh sách")
                for count, _ in enumerate(
                    RejectsFile(rejects).through(prepared.decisions()), start=1
                ):
                    if count % 5000 == 0:
                        tick(5000)
        finally:
            runtime.close()
    if reach is not None and prepared.spec.channels is None:
        err.print("--reach: this campaign has its SMS alone (no [[channels]]): ignored")
    summary = plan_figures(prepared, loaded, reach)
    summary.update(list=str(recipients))
    if as_json:
        print_json(summary)
        return
    from scripts.plan_view import plan_tables

    for table in plan_tables(summary, f"Kế hoạch {prepared.spec.id} (chưa gửi · dry run)"):
        out.print(table)
    _limit_warnings(prepared.summary)


@app.command("launch")
def launch(
    spec: SpecArg,
    recipients: RecipientsOpt,
    phone_column: PhoneColumn = None,
    encoding: Encoding = None,
    sheet: Sheet = None,
    ported: Ported = None,
    rejects: Rejects = None,
    wait: Annotated[
        bool, typer.Option(help="Wait for final statuses (always, when jobs run in this process).")
    ] = False,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for final statuses.")
    ] = 3600,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Start sending at TIME (ISO 8601, e.g. 2026-11-29T07:30; Vietnam's time "
            "unless an offset is given): recorded now, `scheduled` until `loa scheduler` "
            "starts it. Needs Redis.",
        ),
    ] = None,
    even_if_expired: EvenIfExpired = False,
    as_json: JsonOption = False,
) -> None:
    """Check a campaign file and its list, record every recipient in the ledger, and queue
    the sending. Launching the same campaign id again adds nothing. Exit 2 when the
    validity would end before the first sending hour (`--even-if-expired` to go on).

    Embedded (no LOA_REDIS_URL) the jobs run in this process until every recipient has a
    final status; with Redis they go to `loa worker` processes. With `--at TIME` nothing
    is queued before TIME; the campaign's validity runs from then.
    """
    from ledger.db import describe_location
    from scripts.formats import count
    from worker.campaign.embedded import embedded_worker, wait_for_campaign
    from worker.campaign.launch import launch as launch_campaign
    from worker.campaign.planning import ListOptions
    from worker.runtime import Runtime

    loaded = settings()
    if loaded.embedded:  # the jobs run here: the progress and the table, not INFO logs
        quiet_in_process(loaded)
    options = ListOptions(phone_column, encoding, sheet, ported)
    _check_paths(loaded, spec, recipients, ported, rejects)
    start_at = _start_time(at, loaded.embedded) if at is not None else None
    _check_sendable(spec, start_at, even_if_expired)
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            # Embedded, the jobs run in this process: work them and wait. With Redis,
            # `loa worker` processes send; wait only when asked.
            in_process = embedded_worker(runtime) if loaded.embedded else nullcontext(None)
            with progress() as bar, in_process as broker:
                tick = counter(bar, "Đang ghi danh sách")
                launched = launch_campaign(
                    runtime, spec, recipients, options, rejects=rejects, progress=tick,
                    start_at=start_at,
                )  # fmt: skip
                summary = wait_for_campaign(
                    runtime, broker, launched.campaign_id,
                    timeout=timeout if loaded.embedded or wait else 0,
                    on_progress=follow(bar, "Đang gửi"),
                )  # fmt: skip
        finally:
            runtime.close()
    if launched.list_differs:
        err.print(
            f"campaign {launched.campaign_id} was already launched with another list "
            f"({summary.campaign.list_name}, {count(summary.campaign.intake.get('rows_read', 0))} "
            f"rows): {recipients.name} was NOT added. Give the campaign a new id to send it."
        )
    elif launched.spec_differs:
        err.print(
            f"campaign {launched.campaign_id} was already launched with another campaign "
            f"file (it differs in: {', '.join(launched.spec_differs)}): {spec.name}'s "
            "changes were NOT applied. Give the campaign a new id to send them."
        )
    elif not launched.created:
        err.print(f"campaign {launched.campaign_id} was already launched: nothing added")
    extra = {
        "launched": launched.created,
        "list_ignored": launched.list_differs,
        "spec_ignored": list(launched.spec_differs),
        "batches_enqueued": launched.batches_enqueued,
        "ledger": describe_location(runtime.engine),
    }
    _limit_warnings(launched.prepared.summary)
    report(summary, as_json, f"Chiến dịch {summary.campaign.id}", extra)
    if launched.refused:
        raise typer.Exit(BAD_INPUT)
    if (loaded.embedded or wait) and not summary.done:
        left = summary.recipients - summary.final
        waiting = summary.waiting_for
        why = f" ({fmt_waiting(waiting.reason)})" if waiting is not None else ""
        err.print(
            f"chưa xong · not done: {count(left)} tin chưa có trạng thái cuối · messages not "
            f"final yet{why}; theo dõi · follow: loa campaign status {summary.campaign.id} "
            "--watch"
        )
        raise typer.Exit(FAILURE)


def fmt_waiting(reason: str) -> str:
    """What a campaign waits for, in words (``scripts.formats.WAITING``)."""
    from scripts.formats import WAITING

    return WAITING.get(reason, reason)


def _limit_warnings(summary: PlanSummary) -> None:
    """Texts longer than their provider advises (sent all the same), one line each; a
    text over what a provider takes stopped the plan already (exit 2)."""
    for found in summary.limit_warnings:
        warning = f"Cảnh báo · warning: {found.describe()}"
        err.print(warning, style="yellow", markup=False, soft_wrap=True)


def _start_time(text: str, embedded: bool) -> datetime:
    """``--at``'s time, aware; exit 2 for one that is not a time, is past, or when there
    is no Redis (nothing would start it)."""
    from campaigns.hours import VIETNAM

    if embedded:
        fail(
            "--at needs LOA_REDIS_URL and a running `loa scheduler`; without Redis, launch when it is time",
            BAD_INPUT,
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text!r}: not a time (e.g. 2026-11-29T07:30)", BAD_INPUT)
    moment = moment.replace(tzinfo=VIETNAM) if moment.tzinfo is None else moment
    if moment < datetime.now(VIETNAM) - timedelta(minutes=1):
        fail(f"--at {text}: that time has passed", BAD_INPUT)
    # A year ahead at most: further is a typo (2099 for 2026), and near year 9999 the
    # validity's end no longer fits in a date.
    if moment > datetime.now(VIETNAM) + timedelta(days=366):
        fail(f"--at {text}: more than a year ahead; launch nearer the time", BAD_INPUT)
    return moment


@app.command("status")
def status(
    campaign_id: Annotated[
        str, typer.Argument(metavar="ID", help="The campaign's id, as in its file.")
    ],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Follow it live until every recipient is final (Ctrl-C: stop)."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0.1, max=3600, metavar="SECONDS", help="Seconds between two looks with --watch."
        ),
    ] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Intake counts and recipients per status and per provider; what the campaign waits
    for and until when (its sending hours, a halted provider, a cooldown, a pause, its
    start, its validity, receipts); the send rate and the time left at the agreed rates.
    `--watch` follows it live (a progress bar and a rate per provider; one JSON line per
    look with `--json`) and ends, exit 0, when every recipient is final; Ctrl-C stops
    watching (exit 130), not the campaign."""
    from scripts.campaign_status import status as show_status

    show_status(campaign_id, watch, interval, as_json)


IdArg = Annotated[str, typer.Argument(metavar="ID", help="The campaign's id, as in its file.")]


#: The state ``pause`` and ``cancel`` leave a campaign in: asked again, they change
#: nothing and say so (exit 0: a script run twice must not fail the second time).
_ALREADY = {
    "pause": "đã tạm dừng từ trước, không có gì thay đổi · it was already paused: nothing changed",
    "cancel": "đã huỷ từ trước, không có gì thay đổi · it was already cancelled: nothing changed",
    "resume": "vẫn đang chạy, không lô nào phải đưa lại hàng đợi · it was already running: "
    "no batch needed queuing again",
}


def _control(action: str, campaign_id: str, as_json: bool) -> None:
    """Pause, resume or cancel, then the campaign's summary and what the command did:
    ``already`` when it was so before (paused, cancelled, or running with every batch
    queued: exit 0); a cancel also counts the messages workers already hold, which are
    still sent and settled (``still_sending``)."""
    from campaigns.status import Status
    from ledger.summary import load_campaign, summarise
    from worker.campaign import control
    from worker.campaign.embedded import embedded_worker, wait_for_campaign
    from worker.campaign.waiting import explained
    from worker.runtime import Runtime

    loaded = settings()
    in_process = action == "resume" and loaded.embedded
    if in_process:
        quiet_in_process(loaded)
    with errors_as_exit_codes():
        runtime = Runtime(loaded)
        try:
            runtime.ensure_schema()
            before = load_campaign(runtime.engine, campaign_id).state
            summary = None
            if control.left_so(action, before):
                count = 0
            elif in_process:
                # No worker elsewhere: work the resumed batches here, as launch does.
                with embedded_worker(runtime) as broker, progress() as bar:
                    count = control.resume(runtime, campaign_id)
                    summary = wait_for_campaign(
                        runtime,
                        broker,
                        campaign_id,
                        timeout=3600,
                        on_progress=follow(bar, "Đang gửi"),
                    )
            else:
                count = getattr(control, action)(runtime, campaign_id)
            already = control.already(action, before, count)
            # What it waits for now (paused since …); embedded, a resume sent from here,
            # so this process's cooldowns are the real ones.
            summary = explained(
                runtime,
                summary or summarise(runtime.engine, campaign_id),
                cooldowns_here=in_process,
            )
        finally:
            runtime.close()
    extra: dict[str, object] = {
        "action": action,
        {"resume": "batches_enqueued", "cancel": "cancelled"}.get(action, "changed"): count,
    }
    if action == "cancel":
        extra["still_sending"] = summary.statuses[Status.SENDING]
    title = f"Chiến dịch {campaign_id}"
    if as_json:
        report(summary, True, title, {**extra, "already": already})
        return
    report(summary, False, title, extra)
    if already:
        out.print(f"[bold]{fmt.EXTRAS['already']}:[/] {_ALREADY[action]}")


@app.command("pause")
def pause(campaign_id: IdArg, as_json: JsonOption = False) -> None:
    """Stop workers from taking the campaign's batches; what is being sent finishes."""
    _control("pause", campaign_id, as_json)


@app.command("resume")
def resume(campaign_id: IdArg, as_json: JsonOption = False) -> None:
    """Put a paused campaign's waiting batches back on the queue (or a running one's
    whose jobs were lost; with Redis, only batches that have no job there). Embedded:
    send them here and wait."""
    _control("resume", campaign_id, as_json)


@app.command("cancel")
def cancel(campaign_id: IdArg, as_json: JsonOption = False) -> None:
    """End every message not yet taken by a worker as `cancelled`, for good. What workers
    already hold (up to processes x threads x LOA_BATCH_SIZE) is still sent; what they
    give back ends `cancelled` too."""
    _control("cancel", campaign_id, as_json)
