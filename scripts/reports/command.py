"""``loa report``: a campaign's delivery report, for people who look rather than query.

CSV: one row per recipient, final state, number masked (``scripts.reports.recipients``:
Vietnamese columns, statuses and times by default). XLSX: a summary sheet (every
recipient counted in exactly one state, the totals adding up on the page), one sheet per
breakdown, and the recipients. Labels in Vietnamese by default, English with
``--lang en``. The aggregation is ``ledger.reports.campaign`` (in SQL).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from campaigns.files import atomic_private
from scripts.common import JsonOption, check_outputs, ledger_runtime, settings
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json
from scripts.reports.goal_sections import campaign_goal, day_goals, write_goal_report
from scripts.reports.words import LABELS, STATES, meaning, number

__all__ = ["LABELS", "Format", "report", "write_daily_report"]


class Format(StrEnum):
    HTML = "html"
    CSV = "csv"
    XLSX = "xlsx"


class Lang(StrEnum):
    VI = "vi"
    EN = "en"


def _check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        fail(f"{path}: is a folder; name the report file", BAD_INPUT)
    if path.exists() and not path.is_symlink() and not path.is_file():
        # A device or a pipe: the report would be renamed over it, not written into it.
        fail(f"{path}: not a regular file; name the report file", BAD_INPUT)
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        fail(f"{path}: cannot write there (no such folder, or no permission)", BAD_INPUT)


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """What the checks before cannot see (root writes where the permissions say no until
    the file system refuses, a full disk, the folder changed meanwhile): an ``OSError``
    writing or renaming the report is one line naming it and exit 2, never a traceback."""
    folder = (path.parent if str(path.parent) else Path(".")).absolute()
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename).absolute().parent != folder:
            raise  # not the report's
        fail(f"{path}: cannot write the report ({exc.strerror or exc})", BAD_INPUT)


def _meaning(runtime: Any, failure: dict[str, Any], lang: str) -> tuple[str, str]:
    """A failure row's code's meaning in ``lang`` (without repeating its outcome), and
    as the provider's own table says it."""
    provider, code = failure["provider"], failure["code"]
    try:
        described = (runtime.provider(provider).describe(code) or "") if code else ""
    except Exception:  # a provider no longer configured: the code alone
        described = ""
    return meaning(code, described, lang, failure["status"]), described


#: The extensions that name a report's format.
EXTENSIONS = ".html, .htm, .xlsx or .csv"


def _format(given: Format | None, out_path: Path) -> Format:
    """The format asked for, or the one the file's name says (``.html``/``.htm``,
    ``.xlsx``, ``.csv``). A name that says none (``bao-cao.pdf``, ``x``) needs
    ``--format``, and one that contradicts it is refused: an auditor sent
    ``bao-cao.pdf`` or ``bao-cao.html`` holding a spreadsheet cannot open it. Exits 2."""
    suffix = out_path.suffix.lower().removeprefix(".")
    named = Format.HTML if suffix == "htm" else next((f for f in Format if f.value == suffix), None)
    if given is None:
        if named is None:
            said = f"the extension .{suffix} is" if suffix else "it has no extension, which is"
            fail(
                f"{out_path}: {said} not a report format; name the file {EXTENSIONS}, "
                "or give --format html|xlsx|csv",
                BAD_INPUT,
            )
        return named
    if named is not None and named is not given:
        fail(f"{out_path}: the name says {named.value}, --format says {given.value}", BAD_INPUT)
    return given


def report(
    campaign_id: Annotated[
        str | None, typer.Argument(help="The campaign's id, as in its file (or use --daily).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="The report file to write.")
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="html (one file, phone and print), xlsx, csv. Default: from the --out "
            "file's extension (.html, .htm, .xlsx, .csv; another is refused without "
            "--format).",
        ),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Labels: vi (default) or en.")] = Lang.VI,
    by: Annotated[
        str | None,
        typer.Option("--by", help="A list column to break down by (default: district)."),
    ] = None,
    daily: Annotated[
        str | None,
        typer.Option(
            "--daily",
            metavar="DATE",
            help="Instead of one campaign: every campaign active on DATE (YYYY-MM-DD, today "
            "or yesterday; Vietnam's day), its moves that day and its standing now.",
        ),
    ] = None,
    goal_only: Annotated[
        bool,
        typer.Option(
            "--goal",
            help="The goal's table alone, as CSV: a row per district (share, outcome, "
            "population, recipients, reached, who acted), those outside its districts and "
            "the total; with --daily, each goal of the day. (HTML and XLSX reports carry "
            "it already.)",
        ),
    ] = False,
    verify_now: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Seal pending events and verify the whole audit chain first (as `loa audit "
            "verify`); without it the report shows the last recorded verification.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a campaign's delivery report: every recipient in exactly one final state
    (numbers masked), intake counts, parts billed, cost, delivery rate, a timeline of
    sends and deliveries, and breakdowns by district (or `--by` column), carrier,
    provider, hour, and failures by error code. With `--daily DATE`, the day's update
    across campaigns instead. `--json` prints the figures too. Exit 2 for an unknown or
    empty campaign, an unwritable path, an --out whose extension names no format (without
    --format), a column the list never had or a bad date.

    Examples:

    ```
    loa report bluezone-ninh-thuan-2020 --format html --out bao-cao.html
    loa report --daily yesterday --format html --out ngay.html
    ```
    """
    if (campaign_id is None) == (daily is None):
        fail("name one campaign, or --daily DATE for every campaign active that day", BAD_INPUT)
    if out_path is None:
        fail("--out PATH: where to write the report", BAD_INPUT)
    if daily is not None and by is not None:
        fail("--by is for one campaign's report, not --daily", BAD_INPUT)
    fmt = _format(fmt, out_path)
    if goal_only and fmt is not Format.CSV:
        fail(f"--goal writes the goal's table as CSV; the {fmt.value} report carries it "
             "already (leave out --goal)", BAD_INPUT)  # fmt: skip
    loaded = settings()
    check_outputs(loaded, {"--out": out_path}, {})
    _check_writable(out_path)
    words = LABELS[lang.value]
    # Written beside the target under a fresh private name (0600, never through a link)
    # and renamed onto it when complete: a failed report leaves nothing.
    with _writing(out_path), ExitStack() as stack:
        try:
            handle = stack.enter_context(atomic_private(out_path))
        except OSError as exc:
            fail(f"{out_path}: cannot write there ({exc.strerror})", BAD_INPUT)
        with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
            if goal_only:
                data = write_goal_report(runtime, campaign_id, daily, words, handle)
            elif daily is not None:
                data = write_daily_report(runtime, daily, fmt, words, handle, verify_now)
            else:
                data = write_campaign_report(
                    runtime, campaign_id, by, fmt, words, handle, verify_now
                )
    if as_json:
        print_json({"out": str(out_path), **data})
        return
    if goal_only:
        out.print(f"{words['goals']}: {number(len(data['goals']), lang.value)} → {out_path}")
    elif daily is not None:
        out.print(f"{words['daily']} {data['day']}: {number(len(data['campaigns']), lang.value)} "
                  f"{words['campaigns_word']} → {out_path}")  # fmt: skip
    else:
        out.print(f"{words['recipients']}: {number(data['recipients'], lang.value)} → {out_path}")


def _audit(runtime: Any, verify_now: bool) -> dict[str, Any]:
    """The audit log's status for the report; with ``verify_now``, pending events are
    sealed and the whole log verified (and recorded) first, as `loa audit verify` does.
    With a signing key, a checkpoint of the log is signed now and carried by the report
    (an auditor receives one without asking: ``checkpoint``, its text); without one the
    report says the log is unsigned (``checkpoint`` None)."""
    from ledger.audit.log import LogBroken, make_checkpoint
    from ledger.audit.verify import verify_log
    from ledger.chain import audit_status, record_verdict, seal_all

    settings, engine = runtime.settings, runtime.engine
    seed = settings.signing_seed()
    if verify_now:
        seal_all(engine)
        record_verdict(engine, verify_log(engine, settings.audit_key()))
    checkpoint = None
    if seed is not None:
        seal_all(engine)
        try:
            checkpoint = make_checkpoint(engine, settings.audit_log_name, seed).text
        except LogBroken:
            checkpoint = None  # the verdict says why; nothing can be signed over it
    status = audit_status(engine)
    return {
        **status,
        "verified_now": verify_now,
        "checkpoint": checkpoint,
        "signed": seed is not None,
    }


def _now() -> str:
    """When the report is made (UTC, ISO 8601), for its reader."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def write_campaign_report(
    runtime: Any,
    campaign_id: str,
    by: str | None,
    fmt: Format,
    words: dict,
    handle: BinaryIO,
    verify_now: bool,
) -> dict[str, Any]:
    """Write ``campaign_id``'s report in ``fmt`` with ``words`` (a language's labels) to
    the open file ``handle``; returns its figures (``--json``'s).

    Raises:
        CampaignNotFound, ReportError: an unknown or empty campaign, a ``by`` column the
            list never had.
    """
    from ledger.reports.campaign import build

    built = build(runtime.engine, campaign_id, by)
    data = built.as_dict()
    data["channels"] = _channels(runtime, built.campaign)
    if data["channels"]:  # several channels: the statuses count messages, not recipients
        found = data["channels"]
        reached = sum(found["reached"].values())
        data["all_channels"], data["recipients"] = data["recipients"], found["recipients"]
        data["reached"] = reached
        data["reached_share"] = round(reached / found["recipients"], 4) if reached else 0.0
    data["goal"] = campaign_goal(runtime, built.campaign)
    from ledger.goals.followup import follow_ups

    data["follow_ups"] = follow_ups(
        runtime.engine, campaign_id, runtime.settings.retention_secret()
    )
    data["generated_at"] = _now()
    data["audit"] = _audit(runtime, verify_now)
    for failure in data["failures"]:
        failure["meaning"], failure["provider_meaning"] = _meaning(runtime, failure, words["lang"])
    if fmt is Format.CSV:
        from scripts.reports.recipients import write_csv

        write_csv(runtime.engine, handle, campaign_id, words)
    elif fmt is Format.HTML:
        from scripts.reports.html import render

        handle.write(render(data, words, STATES, data["audit"]).encode("utf-8"))
    else:
        from scripts.reports.xlsx import write_xlsx

        write_xlsx(runtime.engine, data, words, handle)
    return data


def _channels(runtime: Any, campaign: Any) -> dict[str, Any] | None:
    """A multi-channel campaign's recipients across its channels (``None`` for one with
    its SMS alone); ``campaign``: the record the report was built from."""
    from ledger.channels.outcomes import outcomes

    if campaign.spec.channels is None:
        return None
    cost = campaign.intake.get("cost")
    return outcomes(runtime.engine, campaign.id, campaign.spec, cost).as_dict()


def write_daily_report(
    runtime: Any, day_text: str, fmt: Format, words: dict, handle: BinaryIO, verify_now: bool
) -> dict[str, Any]:
    """Write the day's update across campaigns (``--daily DAY_TEXT``) in ``fmt`` to the
    open file ``handle``; returns its figures. Exits 2 (``fail``) for a bad day."""
    from ledger.reports.daily import build_daily
    from scripts.reports import daily as report_daily  # the daily update

    try:
        day = report_daily.parse_day(day_text)
    except report_daily.DayError as error:
        fail(str(error), BAD_INPUT)
    data = build_daily(runtime.engine, day).as_dict()
    data["goals"] = day_goals(runtime, [c["campaign"] for c in data["campaigns"]], day)
    data["generated_at"] = _now()
    data["audit"] = _audit(runtime, verify_now)
    if fmt is Format.CSV:
        report_daily.write_csv(data, words, handle)
    elif fmt is Format.HTML:
        handle.write(report_daily.render_html(data, words, data["audit"]).encode("utf-8"))
    else:
        report_daily.write_xlsx(data, words, handle)
    return data
