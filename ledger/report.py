"""What a campaign's report says, aggregated in SQL (``GROUP BY`` in the database, never a
Python loop over a million rows): every recipient in exactly one final state, the intake
counts the planner recorded, and the breakdowns the Department of Information and
Communications reports to the provincial leadership.

Hours are Vietnam's (UTC+7, no daylight saving). A breakdown by a list column (``--by``,
``district`` by default when the list has one) reads that column from each message's
stored cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.plan import column_for
from campaigns.status import FINAL, Status
from ledger.schema import key_of, messages
from ledger.summary import CampaignRecord, load_campaign

#: Parts a provider took (and so bills): accepted, whatever happened next.
BILLED = (Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNKNOWN)
VIETNAM_OFFSET_HOURS = 7


class ReportError(ValueError):
    """The report cannot be made as asked (an empty campaign, a column the list never had)."""


@dataclass
class Report:
    campaign: CampaignRecord
    statuses: dict[str, int]
    parts_billed: int
    cost: float | None
    by: str | None  # the list column of the ``by_column`` breakdown
    by_column: dict[str, dict[str, int]] = field(default_factory=dict)
    by_carrier: dict[str, dict[str, int]] = field(default_factory=dict)
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    by_hour: dict[int, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recipients(self) -> int:
        return sum(self.statuses.values())

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among those with a delivery outcome (delivered or undelivered)."""
        delivered = self.statuses.get("delivered", 0)
        known = delivered + self.statuses.get("undelivered", 0)
        return round(delivered / known, 4) if known else None

    def as_dict(self) -> dict[str, Any]:
        intake = self.campaign.intake
        return {
            "campaign": self.campaign.id,
            "name": self.campaign.name,
            "rows_read": intake.get("rows_read", 0),
            "rejected": intake.get("rejected", 0),
            "rejected_by_reason": intake.get("rejected_by_reason", {}),
            "duplicates": intake.get("duplicates", 0),
            "suppressed": intake.get("suppressed", 0),
            "suppressed_by_list": intake.get("suppressed_by_list", {}),
            "recipients": self.recipients,
            "statuses": self.statuses,
            "final": sum(n for s, n in self.statuses.items() if Status(s) in FINAL),
            "delivery_rate": self.delivery_rate,
            "parts_billed": self.parts_billed,
            "cost": self.cost,
            "currency": self.campaign.spec.prices.currency if self.campaign.spec.prices else None,
            "by": self.by,
            "by_column": self.by_column,
            "by_carrier": self.by_carrier,
            "by_provider": self.by_provider,
            "by_hour": {str(h): v for h, v in sorted(self.by_hour.items())},
            "failures": self.failures,
        }


def _grouped(conn: Connection, key: Any, campaign_id: str) -> dict[Any, dict[str, int]]:
    query = (
        sa.select(key.label("key"), messages.c.status, sa.func.count())
        .where(messages.c.campaign_key == key_of(campaign_id))
        .group_by(key, messages.c.status)
    )
    found: dict[Any, dict[str, int]] = {}
    for group, status, count in conn.execute(query):
        found.setdefault(group if group is not None else "", {})[status] = count
    return found


def _carrier() -> Any:
    """The carrier of a Vietnamese number, the country of a foreign one (as in the plan)."""
    return sa.func.coalesce(messages.c.carrier, messages.c.country)


def _cell(conn: Connection, index: int) -> Any:
    """The list cell at ``index`` of each message's stored cells (a JSON array)."""
    if conn.dialect.name == "postgresql":
        return sa.cast(messages.c.fields, sa.dialects.postgresql.JSONB)[index].astext
    return sa.func.json_extract(messages.c.fields, f"$[{index}]")


def _hour(conn: Connection) -> Any:
    """The hour of day a message was sent, in Vietnam."""
    if conn.dialect.name == "postgresql":
        local = sa.func.timezone("Asia/Ho_Chi_Minh", messages.c.sent_at)
        return sa.cast(sa.extract("hour", local), sa.Integer)
    shifted = sa.func.strftime("%H", messages.c.sent_at, f"+{VIETNAM_OFFSET_HOURS} hours")
    return sa.cast(shifted, sa.Integer)


def build(engine: Engine, campaign_id: str, by: str | None = None) -> Report:
    """Aggregate one campaign.

    Parameters:
        by: a list column to break the recipients down by (default: ``district``, when
            the list has such a column).

    Raises:
        CampaignNotFound: no such campaign.
        ReportError: the campaign has no recipients, or the list never had ``by``.
    """
    campaign = load_campaign(engine, campaign_id)
    index = None
    if by is not None:
        index = column_for(by, campaign.list_columns, {})
        if index is None:
            have = ", ".join(campaign.list_columns) or "no other columns"
            raise ReportError(f"--by {by!r}: the list has no such column ({have})")
    else:
        index = column_for("district", campaign.list_columns, campaign.spec.columns)
    by_name = campaign.list_columns[index] if index is not None else None
    key = key_of(campaign_id)
    with engine.connect() as conn:
        statuses = {
            status: count
            for status, count in conn.execute(
                sa.select(messages.c.status, sa.func.count())
                .where(messages.c.campaign_key == key)
                .group_by(messages.c.status)
            )
        }
        if not statuses:
            raise ReportError(f"campaign {campaign_id!r} has no recipients to report on")
        billed = conn.execute(
            sa.select(_carrier(), sa.func.coalesce(sa.func.sum(messages.c.parts), 0))
            .where(
                messages.c.campaign_key == key,
                messages.c.status.in_([s.value for s in BILLED]),
            )
            .group_by(_carrier())
        ).all()
        report = Report(
            campaign=campaign,
            statuses=dict(sorted(statuses.items())),
            parts_billed=sum(int(parts) for _, parts in billed),
            cost=_cost(campaign, billed),
            by=by_name,
            by_carrier=_grouped(conn, _carrier(), campaign_id),
            by_provider=_grouped(conn, messages.c.provider, campaign_id),
            by_hour={
                h: v
                for h, v in _grouped(conn, _hour(conn), campaign_id).items()
                if h != ""  # never sent: no hour
            },
        )
        if index is not None:
            report.by_column = _grouped(conn, _cell(conn, index), campaign_id)
        report.failures = [
            {"provider": provider, "code": code or "", "recipients": count}
            for provider, code, count in conn.execute(
                sa.select(messages.c.provider, messages.c.error_code, sa.func.count())
                .where(
                    messages.c.campaign_key == key,
                    messages.c.status.in_([Status.FAILED.value, Status.UNDELIVERED.value]),
                )
                .group_by(messages.c.provider, messages.c.error_code)
                .order_by(sa.func.count().desc())
            )
        ]
    return report


def _cost(campaign: CampaignRecord, billed: list[Any]) -> float | None:
    prices = campaign.spec.prices
    if prices is None:
        return None
    total = 0.0
    for carrier, parts in billed:
        price = prices.per_part(carrier)
        if price is None:
            return None
        total += price * int(parts)
    return round(total, 2)
