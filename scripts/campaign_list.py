"""``loa campaign list``: the campaigns in the ledger, newest first, with where each stands.

Registered on ``loa campaign`` by ``scripts.campaign``; the query is ``ledger.listing``.
Figures as ``scripts.formats`` writes them (``1.234.567``, ``96,1 %``); times in
Vietnam's (``when``, shared with ``scripts.recipient``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scripts import formats as fmt
from scripts.common import JsonOption
from scripts.output import BAD_INPUT, errors_as_exit_codes, fail, out, print_json

if TYPE_CHECKING:
    from ledger.listing import CampaignLine


class State(StrEnum):
    """The states ``loa campaign status`` shows (``ledger.listing.STATES``)."""

    scheduled = "scheduled"
    running = "running"
    halted = "halted"
    paused = "paused"
    cancelled = "cancelled"
    completed = "completed"


def when(moment: datetime | None, seconds: bool = False) -> str:
    """An aware time for a table cell, in Vietnam's (``Asia/Ho_Chi_Minh``) with the
    table's title naming the zone: ``07:30 29/11/2026`` (``07:30:05 …`` with
    ``seconds``), the order ``scripts.formats.moment`` writes; ``None`` -> ``—``."""
    from campaigns.hours import VIETNAM

    if moment is None:
        return fmt.NOTHING
    return moment.astimezone(VIETNAM).strftime(("%H:%M:%S" if seconds else "%H:%M") + " %d/%m/%Y")


def parse_day(text: str, option: str, today: date | None = None) -> date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (Vietnam's calendar) given to
    ``option``; anything else exits 2 naming the option."""
    from campaigns.hours import VIETNAM

    today = today or datetime.now(VIETNAM).date()
    words = {"today": today, "yesterday": today - timedelta(days=1)}
    if text.strip().lower() in words:
        return words[text.strip().lower()]
    try:
        if len(text) != 10:  # fromisoformat also takes 20261129 and week dates
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: not a date (YYYY-MM-DD, today or yesterday)", BAD_INPUT)
    if not FIRST_YEAR <= day.year <= LAST_YEAR:  # beyond them, time zones overflow
        fail(f"{option} {text!r}: a year from {FIRST_YEAR} to {LAST_YEAR}", BAD_INPUT)
    return day


#: The years a campaign can have lived in (Loa's ledger has none before 2000).
FIRST_YEAR, LAST_YEAR = 2000, 2999


def _day_start(day: date) -> datetime:
    """Midnight opening ``day`` in Vietnam, aware."""
    from campaigns.hours import VIETNAM

    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM)


def list_campaigns(
    state: Annotated[
        list[State] | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only campaigns in this state (repeatable), as status shows it: scheduled, "
            "running, halted, paused, cancelled or completed.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DATE",
            help="Created on or after DATE (YYYY-MM-DD, today, yesterday; Vietnam's day).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE",
            help="Created on or before DATE (YYYY-MM-DD, today, yesterday; Vietnam's day).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, metavar="N", help="At most this many (0: all).")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """The campaigns in the ledger, newest first: id, name, state (as `loa campaign
    status` shows it), when each was created (Vietnam's time), its recipients, how many
    were delivered and that share. Exit 2: a date that is not one, or --since after
    --until."""
    from scripts.common import ledger_runtime, settings

    first = parse_day(since, "--since") if since is not None else None
    last = parse_day(until, "--until") if until is not None else None
    if first is not None and last is not None and first > last:
        fail(f"--since {first} is after --until {last}: no day between them", BAD_INPUT)
    loaded = settings()
    from ledger.listing import list_campaigns as query

    with errors_as_exit_codes(), ledger_runtime(loaded) as runtime:
        lines, more = query(
            runtime.engine,
            states=[s.value for s in state or ()],
            since=_day_start(first) if first else None,
            until=_day_start(last + timedelta(days=1)) if last else None,
            limit=limit or None,
        )
    if as_json:
        print_json(
            {"campaigns": [_json(line) for line in lines], "count": len(lines), "more": more}
        )
        return
    if not lines:
        filtered = state or since or until
        out.print(
            "Không có chiến dịch nào khớp bộ lọc · no campaigns match these filters"
            if filtered
            else "Sổ cái chưa có chiến dịch nào · no campaigns in the ledger"
        )
        return
    _print_table(lines)
    if more:
        out.print(
            f"[dim]… còn nữa · more: showing the newest {fmt.count(len(lines))}; "
            "--limit N (0: all) or --since/--until to see others[/]"
        )


def _json(line: CampaignLine) -> dict[str, Any]:
    """A line for scripts: times also in Vietnam's (``…_vn``, ISO 8601 with +07:00)."""
    from campaigns.hours import VIETNAM

    data = line.as_dict()
    data["created_at_vn"] = line.created_at.astimezone(VIETNAM).isoformat()
    data["start_at_vn"] = line.start_at.astimezone(VIETNAM).isoformat() if line.start_at else None
    return data


#: The columns a narrow terminal may leave out, least important first (the share says
#: what delivered does, over the recipients).
_OPTIONAL = ("created", "delivered", "recipients")
_HEADERS = {
    "created": "Tạo lúc\ncreated",
    "recipients": "Người nhận\nrecipients",
    "delivered": "Đến máy\ndelivered",
}


def _print_table(lines: list[CampaignLine]) -> None:
    """The table as wide as the terminal allows: on a narrow one the less important
    columns are left out and a line says which (``scripts.tables.fit``); nothing is
    cut."""
    from scripts.tables import fit, left_out_note

    table, left_out = fit(lambda hidden: _table(lines, hidden), _OPTIONAL)
    out.print(table)
    note = left_out_note([_HEADERS[key] for key in left_out])
    if note:
        out.print(note)


def _table(lines: list[CampaignLine], hidden: frozenset[str] = frozenset()) -> Any:
    """The lines as people read them, without the columns in ``hidden`` (keys of
    ``_HEADERS``); headers and times wrap, an id folds."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Chiến dịch · campaigns, mới nhất trước · newest first (giờ Việt Nam · Vietnam time)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_lines=True,
    )
    shown = [key for key in ("created", "recipients", "delivered") if key not in hidden]
    table.add_column("Chiến dịch\ncampaign", overflow="fold", min_width=14)
    table.add_column("Trạng thái\nstate", min_width=9)
    for key in shown:
        table.add_column(_HEADERS[key], justify="left" if key == "created" else "right")
    table.add_column("Tỉ lệ\nshare", justify="right", min_width=7)
    for line in lines:
        # Vietnamese, then English on a line of its own: narrower.
        state = fmt.STATES.get(line.state, line.state).replace(" · ", "\n")
        if line.state == "scheduled" and line.start_at is not None:
            state += f"\n→ {when(line.start_at)}"
        cells = {
            "created": when(line.created_at),
            "recipients": fmt.count(line.recipients),
            "delivered": fmt.count(line.delivered),
        }
        table.add_row(
            # Text, not markup: an id or a name from a campaign file is shown as written.
            Text.assemble((fmt.plain(line.id), "bold"), "\n", (fmt.plain(line.name), "dim")),
            Text(state),
            *(cells[key] for key in shown),
            fmt.NOTHING if line.share is None else fmt.percent(line.share),
        )
    return table
