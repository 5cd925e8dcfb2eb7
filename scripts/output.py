"""Printing for the ``loa`` command line: JSON for scripts, tables for people, one-line
errors with exit codes that mean something.

Exit codes: 0 success, 1 failure (a service down, a campaign that did not finish),
2 bad input (a file, a field, an id, a setting).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ledger.redact import redact
from scripts import formats as fmt

# Nothing heavy at import: every `loa` command imports this module, and `loa --help` must
# answer at once. rich is imported when something is first printed, and the errors below
# are recognised without importing the packages that raise them (see `_user_error`).
if TYPE_CHECKING:
    from pydantic import ValidationError
    from rich.console import Console
    from rich.table import Table

    from ledger.summary import CampaignSummary

OK, FAILURE, BAD_INPUT = 0, 1, 2


class _Lazy:
    """A rich ``Console`` made on first use: ``out.print(...)`` reads as usual, but a
    command that prints nothing (``--help``, ``--json``) never imports rich's console."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(**self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    # Special methods are looked up on the type, not through __getattr__: rich enters the
    # console it is given (`with console:` in Live and Progress), so these forward too.
    # Code that hands a console to rich passes `.console`, the real one.
    def __enter__(self) -> Console:
        return self.console.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.console.__exit__(*exc)  # type: ignore[arg-type]


#: How wide Loa prints where no terminal says how wide (a pipe, a file, cron) and COLUMNS
#: is not set: wide enough that no table is cut (each is as wide as its content).
#: rich's own default there is 80 columns, which cut values off with "…".
GENEROUS_WIDTH = 1000


class _Environment(Mapping[str, str]):
    """The environment as a rich ``Console`` reads it (its ``_environ``), with COLUMNS
    set to ``GENEROUS_WIDTH`` when the console's stream (``sys.stdout``/``sys.stderr``,
    looked up when the console is made) is not a terminal and COLUMNS is not set. On a
    terminal rich asks it its width; a COLUMNS that is set is obeyed everywhere."""

    def __init__(self, stream: str) -> None:
        self._stream = stream

    def _wide(self) -> bool:
        if "COLUMNS" in os.environ:
            return False
        try:
            return not getattr(sys, self._stream).isatty()
        except (AttributeError, ValueError):  # replaced by something without isatty, closed
            return True

    def __getitem__(self, key: str) -> str:
        if key == "COLUMNS" and self._wide():
            return str(GENEROUS_WIDTH)
        return os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


out: Console = _Lazy(highlight=False, _environ=_Environment("stdout"))  # type: ignore[assignment]
err: Console = _Lazy(stderr=True, highlight=False, _environ=_Environment("stderr"))  # type: ignore[assignment]

#: Summary labels: Vietnamese first (the users' language), English beside it.
LABELS: dict[str, str] = {
    "rows_read": "Số dòng đã đọc · rows read",
    "rejected": "Bị loại · rejected",
    "duplicates": "Trùng lặp · duplicates",
    "suppressed": "Bị chặn · suppressed",
    "planned": "Sẽ gửi · to send",
    "valid": "Hợp lệ · valid",
    "legacy_converted": "Số 11 số đã chuyển · 11-digit converted",
    "ported": "Chuyển mạng giữ số · ported",
    "recipients": "Người nhận · recipients",
    "parts": "Số tin tính cước · parts billed",
    "parts_planned": "Số tin sẽ tính cước · parts to bill",
    "queued": "Đang chờ gửi · queued",
    "sending": "Đang gửi · sending",
    "sent": "Chờ báo nhận · sent, awaiting receipt",
    "delivered": "Đã đến máy · delivered",
    "undelivered": "Không đến máy · undelivered",
    "failed": "Thất bại · failed",
    "expired": "Hết hạn · expired",
    "unknown": "Không rõ · unknown",
    "cancelled": "Đã huỷ · cancelled",
    "unreachable": "Kênh không tới được · unreachable on the channel",
    "standby": "Chờ kênh trước · standing by for the channel before",
    "unneeded": "Không cần (kênh trước đã tới) · unneeded, reached before",
    "messages": "Tin nhắn (mọi kênh) · messages, all channels",
}
REJECT_LABELS: dict[str, str] = {
    "empty": "ô trống · empty cell",
    "not_a_number": "không phải số · not a number",
    "wrong_length": "sai độ dài · wrong length",
    "landline": "số cố định · landline",
    "unallocated_prefix": "đầu số chưa cấp · unallocated prefix",
    "invalid_foreign": "số nước ngoài sai · invalid foreign number",
    "missing_field": "thiếu trường mẫu tin · template field empty",
    "extra_cells": "thừa ô ngoài tiêu đề · cells beyond the header",
    "bad_encoding": "byte sai mã UTF-8 · bytes not valid UTF-8",
    "opt_out": "đã từ chối nhận · opted out",
    "dnc": "danh sách không làm phiền · Do-Not-Call",
    "residents": "cư dân · residents",
    "resident": "cư dân · resident",
    "frequency_cap": "vượt hạn mức 24 giờ · 24 h cap reached",
    # Arrival events (campaigns.arrivals.Rejected)
    "no_event_id": "thiếu mã sự kiện · no event id",
    "bad_number": "số không hợp lệ · not a textable number",
    "bad_time": "thời điểm sai · impossible time",
    "future_time": "thời điểm ở tương lai · time in the future",
    "old_time": "thời điểm quá cũ · time too far back",
    "unknown_area": "khu vực lạ · unknown area",
    "bad_language": "ngôn ngữ sai · bad language code",
    "unreadable_row": "dòng không đọc được · unreadable row",
}


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit with ``code``. Passwords in it (a URL's,
    a connection string's echoed by a driver) are masked (``ledger.redact``); brackets in
    it are text, not markup."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(redact(message))}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def settings_problem(exc: ValidationError) -> str:
    """A settings error in the environment variables' own names."""
    return "; ".join(
        f"LOA_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )


@contextmanager
def errors_as_exit_codes() -> Iterator[None]:
    """Turn the errors users can cause into one line and the right exit code."""
    try:
        yield
    except Exception as exc:
        known = _user_error(exc)
        if known is None:
            raise
        fail(*known)


#: The errors a user can cause, by module and class, with the exit code each earns. They
#: are looked up in ``sys.modules`` rather than imported: an error can only have been
#: raised by a module that is loaded, and importing them all here would make every
#: command (and ``loa --help``) load SQLAlchemy, the providers and the ledger.
_BAD_INPUT_ERRORS = (
    ("campaigns.spec", "SpecError"),
    ("campaigns.recipients", "ListError"),
    ("campaigns.plan", "PlanError"),
    ("providers", "ProviderConfigError"),
    ("ledger.summary", "CampaignStateError"),
    ("ledger.audit.export", "ExportError"),
    ("ledger.audit.verify", "ForeignKey"),
    ("ledger.reports.campaign", "ReportError"),
    ("ledger.retention", "RetentionError"),
)


def _loaded(module: str, name: str) -> type[BaseException] | None:
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


def _user_error(exc: BaseException) -> tuple[str, int] | None:
    """``(message, exit code)`` for an error the user caused or a service refusing;
    ``None`` for a bug, which is re-raised."""
    for module, name in _BAD_INPUT_ERRORS:
        kind = _loaded(module, name)
        if kind is not None and isinstance(exc, kind):
            return str(exc), BAD_INPUT
    not_found = _loaded("ledger.summary", "CampaignNotFound")
    if not_found is not None and isinstance(exc, not_found):
        return f"no campaign {exc.args[0]!r} in the ledger", BAD_INPUT
    ledger_error = _loaded("ledger.db", "LedgerError")
    if ledger_error is not None and isinstance(exc, ledger_error):
        return str(exc), FAILURE
    broken = _loaded("ledger.audit.log", "LogBroken")
    if broken is not None and isinstance(exc, broken):
        return f"the audit log is broken: {exc} (`loa audit verify` says more)", FAILURE
    database = sys.modules.get("sqlalchemy.exc")
    if database is not None and isinstance(
        exc, database.OperationalError | database.InterfaceError
    ):
        # The ledger went away or refused during the command (after the schema check):
        # the driver's own words, without SQLAlchemy's statement and parameters.
        return f"ledger error: {exc.orig or exc}", FAILURE
    if database is not None and isinstance(exc, database.IntegrityError | database.DataError):
        # A write the ledger refused (one made at the same moment by another, a value it
        # cannot hold): its first line, without the row's values the driver adds after.
        said = str(exc.orig or exc).splitlines()[0]
        return f"the ledger refused the write, nothing was kept: {said}", FAILURE
    problem = _redis_problem(exc)
    if problem is not None:
        return f"Redis (LOA_REDIS_URL) {problem}: {exc}", FAILURE
    return None


def _redis_problem(exc: BaseException) -> str | None:
    """What Redis did, when ``exc`` is Redis refusing, timing out or answering an error (a
    database number the server does not have)."""
    errors = sys.modules.get("redis.exceptions")
    if errors is None:
        return None
    if isinstance(exc, errors.ConnectionError | errors.TimeoutError):
        return "is not answering"
    if isinstance(exc, errors.ResponseError):
        return "refused"
    return None


def json_value(thing: Any) -> Any:
    """What JSON cannot hold, as scripts want it: times in ISO 8601, whole decimals as
    integers (a PostgreSQL SUM), others as numbers, durations in seconds, enums by value,
    sets as lists; anything else as its text (never ``"None"``: None is null)."""
    from datetime import date, timedelta
    from decimal import Decimal
    from enum import Enum

    if isinstance(thing, date):  # datetime too
        return thing.isoformat()
    if isinstance(thing, Decimal):
        return int(thing) if thing == thing.to_integral_value() else float(thing)
    if isinstance(thing, timedelta):
        return thing.total_seconds()
    if isinstance(thing, Enum):
        return thing.value
    if isinstance(thing, set | frozenset | tuple):
        return sorted(thing, key=str) if isinstance(thing, set | frozenset) else list(thing)
    return str(thing)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (``json_value`` for what JSON lacks)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=json_value) + "\n")


def print_json_line(data: Any) -> None:
    """One JSON document per line (``--watch --json``), flushed for pipes."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=json_value) + "\n")
    sys.stdout.flush()


def summary_table(summary: CampaignSummary, title: str) -> Table:
    """The campaign summary as people read it: intake, then final statuses."""
    from rich.cells import cell_len
    from rich.table import Table

    data = summary.as_dict()
    # At least as wide as its title: piped, a table is as wide as its content, and a
    # longer title was wrapped mid-phrase ("(chưa gửi · dry⏎run)").
    table = Table(title=title, show_header=False, title_justify="left", min_width=cell_len(title))
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for key in ("rows_read", "rejected"):
        table.add_row(LABELS[key], fmt.count(data[key]))
    for reason, count in data["rejected_by_reason"].items():
        table.add_row(f"  {REJECT_LABELS.get(reason, reason)}", fmt.count(count), style="dim")
    table.add_row(LABELS["suppressed"], fmt.count(data.get("suppressed", 0)))  # even 0: the sum
    if data.get("suppressed"):
        for reason, count in data.get("suppressed_by_list", {}).items():
            table.add_row(f"  {REJECT_LABELS.get(reason, reason)}", fmt.count(count), style="dim")
    table.add_row(LABELS["duplicates"], fmt.count(data["duplicates"]))
    table.add_row(LABELS["recipients"], fmt.count(data["recipients"]))
    if data.get("messages", data["recipients"]) != data["recipients"]:  # several channels
        table.add_row(LABELS["messages"], fmt.count(data["messages"]))
    if data.get("parts_planned") is not None:  # a launch shows what it will bill, too
        table.add_row(LABELS["parts_planned"], fmt.count(data["parts_planned"]))
    table.add_row(LABELS["parts"], fmt.count(data["parts"]))
    table.add_section()
    for status, count in data["statuses"].items():
        if count or status in ("sent", "delivered", "failed"):
            table.add_row(LABELS[status], fmt.count(count))
    return table


def report(summary: CampaignSummary, as_json: bool, title: str, extra: dict[str, object]) -> None:
    """A campaign summary as JSON or as a table, then its state, what it waits for
    (when it was asked: ``worker.campaign.waiting``) and the extra lines (ledger path …), each
    labelled and in words (``scripts.formats``)."""
    if as_json:
        print_json({**summary.as_dict(), **extra})
        return
    from rich.markup import escape

    out.print(summary_table(summary, title))
    state = summary.progress_state
    out.print(f"[bold]{fmt.EXTRAS['state']}:[/] {fmt.STATES.get(state, state)}")
    if summary.state_reason and summary.waiting_for is None:
        out.print(f"  vì · why: {escape(fmt.why_words(summary.state_reason))}")
    waiting = summary.waiting_for.as_dict() if summary.waiting_for is not None else None
    for line in fmt.waiting_lines(waiting, _now()):
        out.print(line)
    for key, value in extra.items():
        shown = fmt.ACTIONS.get(value, value) if key == "action" else value
        out.print(f"[bold]{fmt.EXTRAS.get(key, key)}:[/] {escape(fmt.value(shown))}")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def counts_table(
    data: dict[str, Any], title: str, keys: tuple[str, ...], reasons: tuple[str, ...]
) -> Table:
    """Counts as a two-column table: a label per key of ``data``, and under each key in
    ``reasons`` its detail (``<key>_by_reason`` or ``<key>_by_list``), dimmed."""
    from rich.cells import cell_len
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", min_width=cell_len(title))
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for key in keys:
        table.add_row(LABELS.get(key, key), fmt.count(data[key]))
        if key in reasons:
            detail = data.get(f"{key}_by_reason") or data.get(f"{key}_by_list") or {}
            for reason, count in detail.items():
                table.add_row(
                    f"  {REJECT_LABELS.get(reason, reason)}", fmt.count(count), style="dim"
                )
    return table


def screen_table(data: dict[str, Any], title: str) -> Table:
    """``loa recipients check``: rows, valid, rejected by reason, duplicates, carriers."""

    table = counts_table(
        data,
        title,
        ("rows_read", "valid", "rejected", "duplicates", "legacy_converted")
        + (("ported",) if data.get("ported") else ()),
        ("rejected",),
    )
    table.add_section()
    for carrier, count in data["by_carrier"].items():
        table.add_row(carrier, fmt.count(count), style="dim")
    return table
