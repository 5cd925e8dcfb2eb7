"""``loa campaign follow-up``: the next move after a campaign, in one command (issue
#24): a new campaign, linked to the first, to the recipients it did not reach (by why)
or who have not acted, with its own text, routing or channels and hours. Every rule of a
campaign still applies to it: suppression lists, caps, validity, sending hours, de-dupe.

The chosen recipients are written to a private list (0600, in a 0700 folder, removed
after) with the first list's columns, so the follow-up's text can use the same fields,
and planned and launched as any list is.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from scripts import formats as fmt
from scripts.common import JsonOption, ledger_runtime, quiet_in_process, settings
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json

#: A chosen list a killed run left behind (it holds whole numbers) is removed by the next
#: run once it is this old: a run reads its list within seconds of writing it.
STALE_LISTS = 3600


def follow_up(
    campaign_id: Annotated[str, typer.Argument(help="The campaign to follow up.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Whom, comma-separated: undelivered, failed, unknown, expired, unreachable, "
            "cancelled (not reached, by why) and not-acted (reached or not, absent from the "
            "numbers that acted: needs a goal and LOA_RETENTION_KEY).",
        ),
    ],
    spec_path: Annotated[
        Path, typer.Option("--spec", help="The follow-up's campaign file (a new id).")
    ],
    plan_only: Annotated[
        bool, typer.Option("--plan", help="A dry run: who, by why, and the plan; nothing sent.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Launch a follow-up campaign to those CAMPAIGN did not reach (or who have not
    acted). The follow-up is a campaign like any: planned and launched from the chosen
    recipients with their list's columns, its file's own text and routing. Exit 2 for an
    unknown campaign or reason, a campaign file that is wrong or has the first one's id.

    Examples:

    ```
    loa campaign follow-up bluezone-ninh-thuan-2020 --to undelivered,failed --spec nhac-lai.toml --plan
    loa campaign follow-up bluezone-ninh-thuan-2020 --to not-acted --spec nhac-lai.toml
    ```
    """
    from campaigns.spec import load_spec
    from ledger.goals.followup import Chosen, FollowUpError, choose, parse_reasons
    from ledger.summary import load_campaign

    loaded = settings()
    try:
        reasons = parse_reasons(to)
    except FollowUpError as exc:
        fail(str(exc), BAD_INPUT)
    with errors_as_exit_codes():
        spec = load_spec(spec_path)
    if spec.id == campaign_id:
        fail(f"{spec_path}: id {spec.id!r} is the first campaign's; give the follow-up its own",
             BAD_INPUT)  # fmt: skip
    key = loaded.retention_secret()
    if not plan_only:
        quiet_in_process(loaded)  # the embedded workers' lines: the summary says it
    _sweep()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))  # 0700
    try:
        with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
            first = load_campaign(runtime.engine, campaign_id)
            chosen = Chosen()
            listing = folder / f"follow-up-of-{campaign_id}.csv"
            try:
                count = _write(listing, first.list_columns, choose(runtime.engine, first,
                                                                   reasons, key, chosen))  # fmt: skip
            except FollowUpError as exc:
                fail(str(exc), BAD_INPUT)
            result: dict[str, Any] = {
                "campaign": spec.id, "follows": campaign_id, "chosen": count,
                **chosen.as_dict(),
            }  # fmt: skip
            if count == 0:
                result["launched"] = False
            elif plan_only:
                result["plan"] = _plan(runtime, spec, listing)
            else:
                result.update(_launch(runtime, spec, listing, campaign_id, chosen))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        print_json(result)
        if result.get("refused"):
            raise typer.Exit(BAD_INPUT)
        return
    from scripts.plan_view import follow_up_table, plan_tables

    if result.get("refused"):  # said first and alone: nothing was chosen to be sent
        fail(f"{spec_path}: campaign {spec.id} was already launched with another list or "
             "campaign file: nothing was added. Give the follow-up a new id.", BAD_INPUT)  # fmt: skip
    out.print(f"Chiến dịch nhắc lại · follow-up {spec.id} của · of {campaign_id}: "
              f"{fmt.count(count)} người nhận · recipients", markup=False)  # fmt: skip
    out.print(follow_up_table(chosen.as_dict()))
    if "plan" in result:
        for table in plan_tables(result["plan"], f"Kế hoạch {spec.id} (chưa gửi · dry run)"):
            out.print(table)
    elif result.get("launched"):
        statuses = ", ".join(f"{s} {fmt.count(n)}" for s, n in result.get("statuses", {}).items())
        out.print(f"đã khởi chạy · launched {spec.id}"
                  + (f": {statuses}" if statuses else "")
                  + f"; theo dõi · follow it: loa campaign status {spec.id}", markup=False)  # fmt: skip
    elif count:
        out.print(f"{spec.id}: đã có trong sổ cái, không thêm gì · already in the ledger, "
                  "nothing added", markup=False)  # fmt: skip


PREFIX = "loa-follow-up-"


def _sweep() -> None:
    """Remove the chosen lists a killed run left (ours, older than ``STALE_LISTS``)."""
    import os
    import time

    for left in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            facts = left.lstat()
            if facts.st_uid == os.getuid() and time.time() - facts.st_mtime > STALE_LISTS:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:
            continue


def _write(path: Path, columns: list[str], rows: Any) -> int:
    from campaigns.files import create_private

    count = 0
    with create_private(path) as raw, open(raw.fileno(), "w", encoding="utf-8", newline="",
                                           closefd=False) as text:  # fmt: skip
        writer = csv.writer(text)
        writer.writerow(["phone", *columns])
        for number, cells, _ in rows:
            writer.writerow([number, *("" if c is None else c for c in cells)])
            count += 1
    return count


def _plan(runtime: Any, spec: Any, listing: Path) -> dict[str, Any]:
    from worker.campaign.planning import ListOptions, plan_figures, prepare

    prepared = prepare(runtime, spec, listing, ListOptions(phone_column="phone"))
    for _ in prepared.decisions():
        pass
    return plan_figures(prepared, runtime.settings)


def _launch(runtime: Any, spec: Any, listing: Path, first: str, chosen: Any) -> dict[str, Any]:
    from contextlib import nullcontext

    from worker.campaign.embedded import embedded_worker, wait_for_campaign
    from worker.campaign.launch import launch
    from worker.campaign.planning import ListOptions

    follows = {"campaign": first, "by_reason": dict(chosen.by_reason)}
    embedded = runtime.settings.embedded
    with embedded_worker(runtime) if embedded else nullcontext(None) as broker:
        launched = launch(runtime, spec, listing, ListOptions(phone_column="phone"),
                          follows=follows)  # fmt: skip
        shutil.rmtree(listing.parent, ignore_errors=True)  # read: its numbers are in the ledger
        summary = wait_for_campaign(runtime, broker, spec.id, timeout=3600 if embedded else 0)
    return {"launched": launched.created, "refused": launched.refused,
            "batches_enqueued": launched.batches_enqueued, "statuses": {
                s.value: n for s, n in summary.statuses.items() if n}}  # fmt: skip
