"""A campaign's goal section (issue #24): per area, its population, the recipients, those
reached (by each channel, and by any), the outcome and its share of the population,
against the target and the pace that meets it by the deadline.

Every breakdown adds up to its summary: the areas' recipients (plus those whose area the
goal does not have, ``elsewhere``) are the campaign's recipients; the areas' outcomes
are the goal's. The outcome is what the goal is measured by: the counts imported per
area and day when there are any (population-wide, as the app's backend publishes them),
else the recipients matched to the numbers that acted (``acted``, through the keyed
HMAC: needs the retention key). Both are shown when both are known.

The pace: a straight line from the campaign's first day (share 0) to the target on the
deadline; an area under it today is behind, and is named first. Aggregated in SQL
(``GROUP BY`` the list's area cell), never a Python loop over the messages: the numbers
that acted are matched by a join with the recipients' own HMACs written at launch
(``recipient_pseudonyms``); only a recipient without one is HMACed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.goals import GoalSpec, area_matcher
from campaigns.hours import VIETNAM
from campaigns.plan import column_for
from campaigns.status import Status
from ledger.goals.outcomes import today
from ledger.schema import (
    key_of,
    list_cell,
    messages,
    outcome_acts,
    outcome_counts,
    recipient_pseudonyms,
)
from ledger.summary import CampaignRecord


def pace_on(target: float, start: date, deadline: date, day: date) -> float:
    """The share that keeps, on ``day``, to a straight line from 0 on ``start`` to
    ``target`` on ``deadline``: the target itself from the deadline on, and when the goal
    began on or after its deadline (the pace the report's line and its chart both say)."""
    total = (deadline - start).days
    if total <= 0 or day >= deadline:
        return target
    return target * max(0, (day - start).days) / total


@dataclass
class Area:
    """One area of the goal as the campaign stands in it."""

    name: str
    population: int
    recipients: int = 0
    reached: int = 0  # by any channel, each recipient once
    by_channel: dict[str, int] = field(default_factory=dict)
    outcomes: int = 0
    acted: int | None = None  # recipients among the numbers that acted (None: unknown)

    def share(self) -> float:
        return self.outcomes / self.population if self.population else 0.0


@dataclass
class GoalSection:
    """The goal, its areas (behind the pace first), and the whole."""

    goal: GoalSpec
    day: date
    start: date
    areas: list[Area]
    elsewhere: int  # recipients whose area the goal does not have
    measured_by: str  # "counts", "acted" or "none"
    by_day: list[tuple[date, int]]  # the outcomes so far, day by day (cumulative)
    elsewhere_reached: int = 0  # of those, reached
    elsewhere_acted: int | None = None  # of those, among the numbers that acted
    #: The numbers that acted were kept under another LOA_RETENTION_KEY: not matched.
    other_key: bool = False
    campaign: str = ""  # whose recipients the section counts

    @property
    def population(self) -> int:
        return sum(area.population for area in self.areas)

    @property
    def outcomes(self) -> int:
        return sum(area.outcomes for area in self.areas)

    @property
    def days_left(self) -> int:
        return (self.goal.deadline - self.day).days

    def pace(self, day: date) -> float:
        """The share that, on ``day``, keeps to a straight line to the target."""
        return pace_on(self.goal.target, self.start, self.goal.deadline, day)

    def behind(self, area: Area) -> bool:
        return area.share() < self.pace(self.day)

    def as_dict(self) -> dict[str, Any]:
        pace = self.pace(self.day)
        return {
            "goal": self.goal.name,
            "campaign": self.campaign,
            "target": self.goal.target,
            "deadline": self.goal.deadline.isoformat(),
            "day": self.day.isoformat(),
            "start": self.start.isoformat(),
            "days_left": self.days_left,
            "pace": round(pace, 4),
            "measured_by": self.measured_by,
            "population": self.population,
            "recipients": sum(a.recipients for a in self.areas) + self.elsewhere,
            "elsewhere": self.elsewhere,
            "elsewhere_reached": self.elsewhere_reached,
            "elsewhere_acted": self.elsewhere_acted,
            "acted_under_another_key": self.other_key,
            "acted": (
                None
                if self.elsewhere_acted is None
                else sum(a.acted or 0 for a in self.areas) + self.elsewhere_acted
            ),
            "reached": sum(a.reached for a in self.areas) + self.elsewhere_reached,
            "outcomes": self.outcomes,
            "share": round(self.outcomes / self.population, 4) if self.population else 0.0,
            "areas": [
                {
                    "area": a.name,
                    "population": a.population,
                    "recipients": a.recipients,
                    "reached": a.reached,
                    "by_channel": a.by_channel,
                    "outcomes": a.outcomes,
                    "acted": a.acted,
                    "share": round(a.share(), 4),
                    "behind": a.share() < pace,
                }
                for a in self.areas
            ],
            "by_day": [
                {
                    "day": d.isoformat(),
                    "outcomes": n,
                    "share": round(n / self.population, 4) if self.population else 0.0,
                    "pace": round(self.pace(d), 4),
                }
                for d, n in self.by_day
            ],
        }


def goal_section(
    engine: Engine, campaign: CampaignRecord, key: str | None = None, day: date | None = None
) -> GoalSection | None:
    """The goal section of ``campaign`` (``None`` when it serves no goal). ``key``: the
    retention key, to match the numbers that acted; ``day``: as of (default: today)."""
    goal = campaign.spec.goal
    if goal is None:
        return None
    day = day or today()
    areas = {folded: Area(name, people) for folded, (name, people) in goal.areas.items()}
    index = column_for(goal.area_column, campaign.list_columns, campaign.spec.columns)
    area_of = area_matcher(goal.areas)
    names = _channel_names(campaign)
    elsewhere = elsewhere_reached = 0
    with engine.connect() as conn:
        cell = list_cell(conn, index) if index is not None else sa.literal(None)
        for value, channel, status, count in conn.execute(
            sa.select(cell, messages.c.channel, messages.c.status, sa.func.count())
            .where(messages.c.campaign_key == key_of(campaign.id))
            .group_by(cell, messages.c.channel, messages.c.status)
        ):
            area = areas.get(area_of(str(value)) or "") if value is not None else None
            if (channel or 0) == 0:  # a recipient: its first channel's message
                if area is None:
                    elsewhere += count
                else:
                    area.recipients += count
            if area is not None and status == Status.DELIVERED.value:
                label = names.get(channel or 0, str(channel))
                area.by_channel[label] = area.by_channel.get(label, 0) + count
        for value, reached in conn.execute(
            sa.select(cell, sa.func.count(sa.distinct(messages.c.recipient)))
            .where(
                messages.c.campaign_key == key_of(campaign.id),
                messages.c.status == Status.DELIVERED.value,
            )
            .group_by(cell)
        ):
            area = areas.get(area_of(str(value)) or "") if value is not None else None
            if area is not None:
                area.reached += int(reached)
            else:
                elsewhere_reached += int(reached)
        counted = _counts(conn, goal, day)
        other_key = False
        try:
            acted = _acted(conn, campaign, goal, cell, key, day) if key else None
        except OtherKey:
            acted, other_key = None, True
        by_day = _by_day(conn, goal, day)
    for folded, area in areas.items():
        area.outcomes = counted.get(folded, 0)
        if acted is not None:
            area.acted = acted.get(folded, 0)
    measured = "counts" if counted else ("acted" if acted is not None else "none")
    if measured == "acted":
        for area in areas.values():
            area.outcomes = area.acted or 0
    start = _first_day(engine, goal.name) or campaign.created_at.astimezone(VIETNAM).date()
    elsewhere_acted = acted.get("", 0) if acted is not None else None
    section = GoalSection(goal, day, start, list(areas.values()), elsewhere, measured, by_day,
                          elsewhere_reached, elsewhere_acted, other_key, campaign.id)  # fmt: skip
    section.areas.sort(key=lambda a: (not section.behind(a), a.share() - section.pace(day), a.name))
    return section


def _first_day(engine: Engine, goal: str) -> date | None:
    """Vietnam's day the goal's first campaign was launched: where its pace starts, the
    same in the report of every campaign serving it (a follow-up's too)."""
    from ledger.goals.serving import serving

    with engine.connect() as conn:
        first = next(serving(conn, goal), None)
    return first.created_at.astimezone(VIETNAM).date() if first else None


def _channel_names(campaign: CampaignRecord) -> dict[int, str]:
    if campaign.spec.channels is None:
        return {0: "sms"}
    return {place: channel.name for place, channel in enumerate(campaign.spec.channel_list)}


def _counted(goal: GoalSpec, day: date) -> Any:
    """The goal's imported counts up to ``day``, in the goal's own areas only (an import
    is checked against the goal the campaigns carry, ``ledger.goals.outcomes``; this
    keeps the chart and the table to one set of areas all the same)."""
    return sa.and_(
        outcome_counts.c.goal == goal.name,
        outcome_counts.c.day <= day,
        outcome_counts.c.area.in_(sorted(goal.areas)),
    )


def _counts(conn: Connection, goal: GoalSpec, day: date) -> dict[str, int]:
    """The goal's imported outcomes per area, up to ``day``."""
    return {
        area: int(total)
        for area, total in conn.execute(
            sa.select(outcome_counts.c.area, sa.func.sum(outcome_counts.c.count))
            .where(_counted(goal, day))
            .group_by(outcome_counts.c.area)
        )
    }


def _by_day(conn: Connection, goal: GoalSpec, day: date) -> list[tuple[date, int]]:
    """The outcomes so far, cumulative, on each day one was imported."""
    total, found = 0, []
    for on, count in conn.execute(
        sa.select(outcome_counts.c.day, sa.func.sum(outcome_counts.c.count))
        .where(_counted(goal, day))
        .group_by(outcome_counts.c.day)
        .order_by(outcome_counts.c.day)
    ):
        total += int(count)
        found.append((on, total))
    return found


class OtherKey(Exception):
    """The numbers that acted were kept under another key than the one given."""


def _acted(
    conn: Connection, record: CampaignRecord, spec: GoalSpec, cell: Any, key: str, day: date
) -> dict[str, int] | None:
    """Per area, the campaign's recipients among the numbers that acted by ``day`` (those
    outside the goal's areas under ``""``); ``None`` when no number was imported.

    Those whose keyed HMAC was written at launch (``recipient_pseudonyms``) under the key
    the numbers were kept under are matched by a join in the database; the rest
    (launched without the key, or added since) are HMACed here, one by one, streamed (a
    recipient retention replaced already is one).

    Raises:
        OtherKey: ``key`` is not the one the goal's numbers were kept under.
    """
    from ledger.retention import PREFIX, fingerprint, pseudonymiser
    from ledger.schema import goal_keys

    acts, goal = outcome_acts.c, spec.name
    campaign = key_of(record.id)
    if conn.scalar(sa.select(sa.func.count()).where(acts.goal == goal, acts.day <= day)) == 0:
        return None  # no numbers imported: unknown, not nobody
    kept_under = conn.scalar(sa.select(goal_keys.c.fingerprint).where(goal_keys.c.goal == goal))
    if kept_under is not None and kept_under != fingerprint(key):
        raise OtherKey(kept_under)
    # The launch's HMACs, when made under the numbers' key (else every one is made here).
    launched_under = (record.intake or {}).get("pseudonym_key")
    joinable = launched_under is not None and launched_under == kept_under
    by_join = sa.and_(
        recipient_pseudonyms.c.campaign_key == messages.c.campaign_key,
        recipient_pseudonyms.c.list_row == messages.c.list_row,
    )
    matched: dict[Any, int] = {}  # per raw cell: folded once each, after
    for value, count in (
        conn.execute(
            sa.select(cell, sa.func.count())
            .select_from(
                messages.join(recipient_pseudonyms, by_join).join(
                    outcome_acts,
                    sa.and_(acts.who == recipient_pseudonyms.c.who, acts.goal == goal),
                )
            )
            .where(messages.c.campaign_key == campaign, messages.c.channel == 0, acts.day <= day)
            .group_by(cell)
        )
        if joinable
        else ()
    ):
        matched[value] = matched.get(value, 0) + int(count)
    unpaired = conn.execution_options(yield_per=10_000).execute(
        sa.select(messages.c.recipient, cell)
        .select_from(messages.outerjoin(recipient_pseudonyms, by_join))
        .where(
            messages.c.campaign_key == campaign,
            messages.c.channel == 0,
            recipient_pseudonyms.c.who.is_(None) if joinable else sa.true(),
        )
    )
    who: set[str] | None = None
    pseudonym_of = pseudonymiser(key)
    for recipient, value in unpaired:
        if who is None:  # only when some recipient has no pseudonym of its own
            who = set(conn.scalars(sa.select(acts.who).where(acts.goal == goal, acts.day <= day)))
        hashed = recipient if recipient.startswith(PREFIX) else pseudonym_of(recipient)
        if hashed in who:
            matched[value] = matched.get(value, 0) + 1
    found: dict[str, int] = {}
    area_of = area_matcher(spec.areas)
    for value, count in matched.items():
        area = (area_of(str(value)) or "") if value is not None else ""
        found[area] = found.get(area, 0) + count
    return found
