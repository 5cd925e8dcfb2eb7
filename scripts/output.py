"""Printing for the ``loa`` command line: JSON for scripts, tables for people, one-line
errors with exit codes that mean something.

Exit codes: 0 success, 1 failure (a service down, a campaign that did not finish),
2 bad input (a file, a field, an id, a setting).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import exc as sa_exc

from campaigns.plan import PlanError
from campaigns.recipients import ListError
from campaigns.spec import SpecError
from ledger.db import LedgerError
from ledger.export import ExportError
from ledger.redact import redact
from ledger.report import ReportError
from ledger.retention import RetentionError
from ledger.summary import CampaignNotFound, CampaignStateError, CampaignSummary
from providers import ProviderConfigError

OK, FAILURE, BAD_INPUT = 0, 1, 2

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: Summary labels: Vietnamese first (the users' language), English beside it.
LABELS: dict[str, str] = {
    "rows_read": "Số dòng đã đọc · rows read",
    "rejected": "Bị loại · rejected",
    "duplicates": "Trùng lặp · duplicates",
    "suppressed": "Bị chặn · suppressed",
    "planned": "Sẽ gửi · to send",
    "valid": "Hợp lệ · valid",
    "legacy_converted": "Số 11 số đã chuyển · 11-digit converted",
    "recipients": "Người nhận · recipients",
    "parts": "Số tin tính cước · parts billed",
    "queued": "Đang chờ · queued",
    "sending": "Đang gửi · sending",
    "sent": "Đã gửi · sent",
    "delivered": "Đã nhận · delivered",
    "undelivered": "Không đến máy · undelivered",
    "failed": "Gửi lỗi · failed",
    "expired": "Hết hạn · expired",
    "unknown": "Không rõ · unknown",
    "cancelled": "Đã huỷ · cancelled",
}
REJECT_LABELS: dict[str, str] = {
    "empty": "ô trống · empty cell",
    "not_a_number": "không phải số · not a number",
    "wrong_length": "sai độ dài · wrong length",
    "landline": "số cố định · landline",
    "unallocated_prefix": "đầu số chưa cấp · unallocated prefix",
    "invalid_foreign": "số nước ngoài sai · invalid foreign number",
    "missing_field": "thiếu trường mẫu tin · template field empty",
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
    except (SpecError, ListError, PlanError, ProviderConfigError) as exc:
        fail(str(exc), BAD_INPUT)
    except (CampaignStateError, ExportError, ReportError, RetentionError) as exc:
        fail(str(exc), BAD_INPUT)
    except CampaignNotFound as exc:
        fail(f"no campaign {exc.args[0]!r} in the ledger", BAD_INPUT)
    except LedgerError as exc:
        fail(str(exc), FAILURE)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        # The ledger went away or refused during the command (after the schema check):
        # the driver's own words, without SQLAlchemy's statement and parameters.
        fail(f"ledger error: {exc.orig or exc}", FAILURE)
    except Exception as exc:
        problem = _redis_problem(exc)
        if problem is None:
            raise
        fail(f"Redis (LOA_REDIS_URL) {problem}: {exc}", FAILURE)


def _redis_problem(exc: BaseException) -> str | None:
    """What Redis did, when ``exc`` is Redis refusing, timing out or answering an error (a
    database number the server does not have); redis is imported only by the commands
    that use it, so the others do not pay for importing it here."""
    errors = sys.modules.get("redis.exceptions")
    if errors is None:
        return None
    if isinstance(exc, errors.ConnectionError | errors.TimeoutError):
        return "is not answering"
    if isinstance(exc, errors.ResponseError):
        return "refused"
    return None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def print_json_line(data: Any) -> None:
    """One JSON document per line (``--watch --json``), flushed for pipes."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def summary_table(summary: CampaignSummary, title: str) -> Table:
    """The campaign summary as people read it: intake, then final statuses."""
    data = summary.as_dict()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for key in ("rows_read", "rejected"):
        table.add_row(LABELS[key], f"{data[key]:,}")
    for reason, count in data["rejected_by_reason"].items():
        table.add_row(f"  {REJECT_LABELS.get(reason, reason)}", f"{count:,}", style="dim")
    if data.get("suppressed"):
        table.add_row(LABELS["suppressed"], f"{data['suppressed']:,}")
        for reason, count in data.get("suppressed_by_list", {}).items():
            table.add_row(f"  {REJECT_LABELS.get(reason, reason)}", f"{count:,}", style="dim")
    for key in ("duplicates", "recipients", "parts"):
        table.add_row(LABELS[key], f"{data[key]:,}")
    table.add_section()
    for status, count in data["statuses"].items():
        if count or status in ("sent", "delivered", "failed"):
            table.add_row(LABELS[status], f"{count:,}")
    return table


def report(summary: CampaignSummary, as_json: bool, title: str, extra: dict[str, object]) -> None:
    """A campaign summary as JSON or as a table, with extra lines (ledger path …)."""
    if as_json:
        print_json({**summary.as_dict(), **extra})
        return
    out.print(summary_table(summary, title))
    for key, value in extra.items():
        out.print(f"[bold]{key}:[/] {value}")


def _counts_table(
    data: dict[str, Any], title: str, keys: tuple[str, ...], reasons: tuple[str, ...]
) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for key in keys:
        table.add_row(LABELS.get(key, key), f"{data[key]:,}")
        if key in reasons:
            detail = data.get(f"{key}_by_reason") or data.get(f"{key}_by_list") or {}
            for reason, count in detail.items():
                table.add_row(f"  {REJECT_LABELS.get(reason, reason)}", f"{count:,}", style="dim")
    return table


def plan_tables(data: dict[str, Any], title: str) -> list[Table]:
    """A dry run: the counts, then recipients, parts and cost per provider and carrier."""
    counts = _counts_table(
        data, title, ("rows_read", "rejected", "suppressed", "duplicates", "legacy_converted", "planned", "parts"),
        ("rejected", "suppressed"),
    )  # fmt: skip
    lines = Table(title="Theo nhà mạng · by provider and carrier", title_justify="left")
    for header in ("nhà cung cấp · provider", "nhà mạng · carrier", "mã hoá · encoding"):
        lines.add_column(header)
    for header in (
        "người nhận · recipients",
        "số tin · parts",
        f"chi phí · cost ({data.get('currency') or '-'})",
    ):
        lines.add_column(header, justify="right")
    for line in data["by_provider"]:
        cost = "-" if line["cost"] is None else f"{line['cost']:,.0f}"
        lines.add_row(
            line["provider"],
            line["carrier"],
            line["encoding"],
            f"{line['recipients']:,}",
            f"{line['parts']:,}",
            cost,
        )
    total = "-" if data.get("cost") is None else f"{data['cost']:,.0f}"
    lines.add_section()
    lines.add_row("", "", "", f"{data['planned']:,}", f"{data['parts']:,}", total, style="bold")
    tables = [counts, lines]
    if len(data.get("routing") or ()) > 1:
        tables.insert(1, routing_table(data))
    if data.get("khong_dau"):
        note = Table(show_header=False, box=None)
        note.add_row(
            f"[yellow]Không dấu[/] (diacritics removed) for: {', '.join(data['khong_dau'])}"
        )
        tables.append(note)
    return tables


_RULES = {
    "carrier": "nhà mạng · carrier {}",
    "country": "quốc gia · country {}",
    "other_countries": "nước khác · other countries",
    "default": "mặc định · default",
    "fallback": "dự phòng {} · fallback (halt)",
}


def routing_table(data: dict[str, Any]) -> Table:
    """The routing result: each provider, the rules that send it numbers, and its share."""
    table = Table(title="Định tuyến · routing", title_justify="left")
    table.add_column("nhà cung cấp · provider")
    table.add_column("quy tắc · rules")
    table.add_column("người nhận · recipients", justify="right")
    table.add_column("số tin · parts", justify="right")
    rules: dict[str, list[str]] = {}
    for rule in data["routing"]:
        said = _RULES[rule["rule"]].format(rule["value"])
        rules.setdefault(rule["provider"], []).append(said)
    shares = data.get("providers") or {}
    for provider in sorted(rules.keys() | shares.keys()):
        share = shares.get(provider, {"recipients": 0, "parts": 0})
        table.add_row(
            provider,
            "\n".join(rules.get(provider, ())),
            f"{share['recipients']:,}",
            f"{share['parts']:,}",
        )
    return table


def screen_table(data: dict[str, Any], title: str) -> Table:
    """``loa recipients check``: rows, valid, rejected by reason, duplicates, carriers."""
    table = _counts_table(
        data,
        title,
        ("rows_read", "valid", "rejected", "duplicates", "legacy_converted"),
        ("rejected",),
    )
    table.add_section()
    for carrier, count in data["by_carrier"].items():
        table.add_row(carrier, f"{count:,}", style="dim")
    return table
