"""The goal sections of ``loa report`` (issue #24): a campaign's, the day's (each goal a
campaign active that day serves, or still running), and ``--goal``'s table alone as CSV.
The figures come from ``ledger.goals.section``; their rendering from
``scripts.reports.goal``."""

from __future__ import annotations

from datetime import date
from typing import Any, BinaryIO


def campaign_goal(runtime: Any, campaign: Any) -> dict[str, Any] | None:
    """The goal section of a campaign that serves a goal (``None`` otherwise); the
    recipients who acted matched when the retention key is set."""
    from ledger.goals.section import goal_section

    found = goal_section(runtime.engine, campaign, runtime.settings.retention_secret())
    return found.as_dict() if found is not None else None


def day_goals(runtime: Any, campaign_ids: list[str], day: Any) -> list[dict[str, Any]]:
    """The goal sections of the day, as of that day: each goal a campaign active that day
    serves, and each goal not yet past its deadline whose campaigns were launched by then
    (outcomes keep arriving after the sending ends). One per goal, for the first campaign
    serving it (its pace starts there); its follow-ups' reach is in their own reports."""
    from campaigns.hours import VIETNAM
    from ledger.goals.section import goal_section
    from ledger.goals.serving import serving
    from ledger.summary import load_campaign

    secret = runtime.settings.retention_secret()
    active = set(campaign_ids)
    first: dict[str, str] = {}
    wanted: set[str] = set()
    with runtime.engine.connect() as conn:
        for campaign in serving(conn):
            goal = campaign.goal
            if campaign.created_at.astimezone(VIETNAM).date() > day:
                continue
            first.setdefault(goal["name"], campaign.id)
            if campaign.id in active or day <= date.fromisoformat(str(goal["deadline"])):
                wanted.add(goal["name"])
    found = []
    for name, campaign_id in first.items():
        if name in wanted:
            section = goal_section(runtime.engine, load_campaign(runtime.engine, campaign_id),
                                   secret, day)  # fmt: skip
            if section is not None:
                found.append(section.as_dict())
    return found


def write_goal_report(
    runtime: Any, campaign_id: str | None, daily: str | None, words: dict, handle: BinaryIO
) -> dict[str, Any]:
    """The goal's table (``--goal``) of ``campaign_id``, or of each goal of the day
    ``daily``, as CSV to ``handle``; returns the sections. Exits 2 for a campaign serving
    no goal or a bad day."""
    import csv

    from campaigns.files import as_text, csv_row
    from ledger.summary import load_campaign
    from scripts.output import BAD_INPUT, fail
    from scripts.reports import daily as report_daily
    from scripts.reports.goal import csv_rows

    if daily is not None:
        from ledger.reports.daily import build_daily

        try:
            day = report_daily.parse_day(daily)
        except report_daily.DayError as error:
            fail(str(error), BAD_INPUT)
        active = [c["campaign"] for c in build_daily(runtime.engine, day).as_dict()["campaigns"]]
        data: dict[str, Any] = {"day": day.isoformat(), "goals": day_goals(runtime, active, day)}
    else:
        assert campaign_id is not None
        section = campaign_goal(runtime, load_campaign(runtime.engine, campaign_id))
        if section is None:
            fail(f"campaign {campaign_id} serves no goal (its file names none)", BAD_INPUT)
        data = {"campaign": campaign_id, "goals": [section]}
    with as_text(handle, "utf-8-sig") as text:  # BOM: Excel reads UTF-8
        writer = csv.writer(text)
        for place, goal in enumerate(data["goals"]):
            rows = csv_rows(goal, words)
            writer.writerows(csv_row(row) for row in (rows if place == 0 else rows[1:]))
    return data
