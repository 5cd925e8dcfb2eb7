"""What a campaign's report says, aggregated in SQL (``GROUP BY`` in the database, never a
Python loop over a million rows): every recipient in exactly one final state, the intake
counts the planner recorded, and the breakdowns the Department of Information and
Communications reports to the provincial leadership.

Hours are Vietnam's (UTC+7, no daylight saving). A breakdown by a list column (``--by``,
``district`` by default when the list has one) reads that column from each message's
stored cells. Every breakdown counts every recipient once, so its totals equal the
summary's: the hour breakdown has a group (``None``) for the messages no provider took
(still queued, cancelled or expired, even those a worker had claimed and given back:
``NOT_TAKEN``), the failures list every recipient the message did not reach, by reason
code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from campaigns.plan import column_for
from campaigns.status import FINAL, Status
from ledger.reports.timeline import Timeline, aware, timeline
from ledger.schema import campaigns, events, key_of, list_cell, messages, provider_halts
from ledger.summary import BILLED, CampaignRecord, load_campaign, progress_state

#: The recipients the message did not reach, each with the code that says why.
NOT_REACHED = (Status.UNDELIVERED, Status.FAILED, Status.EXPIRED, Status.UNKNOWN,
               Status.UNREACHABLE, Status.CANCELLED)  # fmt: skip
#: Statuses of messages no provider took: never sent, so without an hour in the hour
#: breakdown, even when a worker claimed one, marked it handed to its sending lane and gave
#: it back (held by the rate gate, throttled, the provider down or halted: ``release``
#: keeps ``handed_at``) before the campaign was cancelled or its validity passed.
NOT_TAKEN = (Status.QUEUED, Status.CANCELLED, Status.EXPIRED)
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
    #: Hour of day (Vietnam) sent, or tried for a failed message; ``None``: no provider
    #: took it (``NOT_TAKEN``).
    by_hour: dict[int | None, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    timeline: Timeline | None = None
    #: The state ``loa campaign status`` shows (completed, halted … derived), why, and
    #: since when (an operator's or worker's change; ``None`` when not recorded).
    state: str = "running"
    state_reason: str | None = None
    state_since: datetime | None = None
    start_at: datetime | None = None  # launched with ``--at``
    #: What people did to the campaign after its launch, in order: ``{at, action, by}``
    #: (paused, resumed, cancelled, provider_resumed …; ``by``: ``user@host`` or
    #: ``api:ACCOUNT``).
    actions: list[dict[str, Any]] = field(default_factory=list)
    first_sent: datetime | None = None  # the first and last message a provider took
    last_sent: datetime | None = None

    @property
    def recipients(self) -> int:
        return sum(self.statuses.values())

    @property
    def reached(self) -> int:
        """Recipients the carrier confirmed the message reached (``delivered``)."""
        return self.statuses.get("delivered", 0)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among those with a delivery outcome (delivered or undelivered)."""
        delivered = self.statuses.get("delivered", 0)
        known = delivered + self.statuses.get("undelivered", 0)
        return round(delivered / known, 4) if known else None

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON: times ISO 8601 in UTC, ``by_hour`` keyed ``"0"``-``"23"``
        and ``"not_sent"``, rates between 0 and 1 (``reached_share``: of every recipient;
        ``delivery_rate``: of those the carriers reported delivered or undelivered).
        ``messages``: each language's text as the phones got it (without diacritics for
        the languages in ``khong_dau``); ``sending_hours``: the hours the worker applied
        (``CampaignSpec.window``), ``sending_hours_from`` saying whose they are:
        ``"campaign"`` (its file), ``"decree_91"`` (advertising's default) or ``None``
        (any hour)."""
        intake, spec = self.campaign.intake, self.campaign.spec
        window = spec.window
        return {
            "campaign": self.campaign.id,
            "name": self.campaign.name,
            "state": self.state,
            "state_reason": self.state_reason,
            "state_since": _iso(self.state_since),
            "category": spec.category.value,
            "brandname": spec.brandname,
            # As sent: the template the worker renders (``campaigns.template``).
            "messages": {lang: spec.template(lang).text for lang in spec.messages},
            "khong_dau": [lang for lang, text in spec.messages.items() if text.strip_diacritics],
            "sending_hours": str(window) if window is not None else None,
            "sending_hours_from": (
                None if window is None else "campaign" if spec.sending_hours else "decree_91"
            ),
            "timezone": "Asia/Ho_Chi_Minh",
            "created_at": _iso(self.campaign.created_at),
            "start_at": _iso(self.start_at),
            "valid_until": _iso(self.campaign.valid_until),
            "first_sent": _iso(self.first_sent),
            "last_sent": _iso(self.last_sent),
            # The OS user and host that ran the launch, when the launch recorded them.
            "launched_by": intake.get("launched_by"),
            "actions": self.actions,
            "list_name": self.campaign.list_name,
            "rows_read": intake.get("rows_read", 0),
            "rejected": intake.get("rejected", 0),
            "rejected_by_reason": intake.get("rejected_by_reason", {}),
            "duplicates": intake.get("duplicates", 0),
            "suppressed": intake.get("suppressed", 0),
            "suppressed_by_list": intake.get("suppressed_by_list", {}),
            "recipients": self.recipients,
            "statuses": self.statuses,
            "final": sum(n for s, n in self.statuses.items() if Status(s) in FINAL),
            "reached": self.reached,
            "reached_share": round(self.reached / self.recipients, 4) if self.recipients else None,
            "delivery_rate": self.delivery_rate,
            "parts_billed": self.parts_billed,
            "cost": self.cost,
            "currency": self.campaign.spec.prices.currency if self.campaign.spec.prices else None,
            "by": self.by,
            "by_column": self.by_column,
            "by_carrier": self.by_carrier,
            "by_provider": self.by_provider,
            "by_hour": {
                "not_sent" if h is None else str(h): v
                for h, v in sorted(self.by_hour.items(), key=lambda item: _hour_order(item[0]))
            },
            "failures": self.failures,
            "timeline": self.timeline.as_dict() if self.timeline else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _hour_order(hour: int | None) -> int:
    return 24 if hour is None else hour  # the never-sent last


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


def hour_in_vietnam(conn: Connection, column: Any = None) -> Any:
    """The hour of day of ``column`` (default: when a message was sent), in Vietnam."""
    column = messages.c.sent_at if column is None else column
    if conn.dialect.name == "postgresql":
        local = sa.func.timezone("Asia/Ho_Chi_Minh", column)
        return sa.cast(sa.extract("hour", local), sa.Integer)
    shifted = sa.func.strftime("%H", column, f"+{VIETNAM_OFFSET_HOURS} hours")
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
        # SMS parts billed: with several channels, only the text channel's messages are
        # SMS; a template channel's deliveries are billed at its own price (``_cost``).
        sms_only = sa.true()
        if campaign.spec.channels is not None:
            sms_only = messages.c.channel == campaign.spec.text_channel
        billed = conn.execute(
            sa.select(_carrier(), sa.func.coalesce(sa.func.sum(messages.c.parts), 0))
            .where(
                messages.c.campaign_key == key,
                messages.c.status.in_([s.value for s in BILLED]),
                sms_only,
            )
            .group_by(_carrier())
        ).all()
        delivered = _template_deliveries(conn, campaign, key)
        report = Report(
            campaign=campaign,
            statuses=dict(sorted(statuses.items())),
            parts_billed=sum(int(parts) for _, parts in billed),
            cost=_cost(campaign, billed, delivered),
            by=by_name,
            by_carrier=_grouped(conn, _carrier(), campaign_id),
            by_provider=_grouped(conn, messages.c.provider, campaign_id),
            by_hour={
                (None if h == "" else int(h)): v  # no provider took it: no hour
                for h, v in _grouped(conn, hour_in_vietnam(conn, _tried_at()), campaign_id).items()
            },
        )
        if index is not None:
            report.by_column = _masked(_grouped(conn, list_cell(conn, index), campaign_id))
        report.timeline = timeline(conn, messages.c.campaign_key == key)
        report.actions = _actions(conn, campaign_id)
        report.failures = _failures(conn, key)
        _standing(conn, report)
    return report


#: An operator's change of a campaign's state, by the state it moved to.
_MOVES = {"paused": "paused", "running": "resumed", "cancelled": "cancelled"}


def _actions(conn: Connection, campaign_id: str) -> list[dict[str, Any]]:
    """The operator's events of the campaign itself (not its messages'), oldest first."""
    rows = conn.execute(
        sa.select(events.c.at, events.c.detail)
        .where(
            events.c.campaign_id == campaign_id,
            events.c.source == "operator",
            events.c.message_id.is_(None),
        )
        .order_by(events.c.id)
    )
    found = []
    for at, detail in rows:
        detail = detail or {}
        action = detail.get("action") or _MOVES.get(detail.get("state", ""), detail.get("state"))
        found.append({"at": _iso(aware(at)), "action": action, "by": detail.get("by")})
    return found


def _tried_at() -> Any:
    """When a provider took the message, or (failed, unknown, in flight) when it was
    tried; ``NULL`` for the statuses no provider took (``NOT_TAKEN``), whatever a claim
    given back left in ``handed_at``."""
    taken = sa.func.coalesce(messages.c.sent_at, messages.c.handed_at)
    return sa.case((messages.c.status.in_([s.value for s in NOT_TAKEN]), sa.null()), else_=taken)


def _failures(conn: Connection, key: Any) -> list[dict[str, Any]]:
    """Every recipient the message did not reach, per status, provider and code (the
    provider's, or Loa's own: ``validity_passed``, ``campaign_cancelled`` …), most first."""
    return [
        {"status": status, "provider": provider, "code": code or "", "recipients": count}
        for status, provider, code, count in conn.execute(
            sa.select(
                messages.c.status, messages.c.provider, messages.c.error_code, sa.func.count()
            )
            .where(
                messages.c.campaign_key == key,
                messages.c.status.in_([s.value for s in NOT_REACHED]),
            )
            .group_by(messages.c.status, messages.c.provider, messages.c.error_code)
            .order_by(sa.func.count().desc(), messages.c.status, messages.c.error_code)
        )
    ]


def _standing(conn: Connection, report: Report) -> None:
    """The campaign's state as ``loa campaign status`` derives it, since when, and when
    its messages were sent."""
    campaign, statuses = report.campaign, report.statuses
    done = all(Status(s) in FINAL for s, n in statuses.items() if n)
    halts: dict[str, str] = {}
    if statuses.get(Status.QUEUED.value):  # on this connection: SQLite opens one at a time
        halts = dict(
            conn.execute(sa.select(provider_halts.c.provider, provider_halts.c.reason)).all()
        )
    waiting = frozenset(p for p, counts in report.by_provider.items() if counts.get("queued"))
    report.state = progress_state(campaign.state, done, halts, waiting)
    report.state_reason = campaign.state_reason
    if campaign.state == "running" and halts.keys() & waiting:
        report.state_reason = "; ".join(
            f"provider {name} halted: {why}"
            for name, why in sorted(halts.items())
            if name in waiting
        )
    report.start_at = conn.scalar(
        sa.select(campaigns.c.start_at).where(campaigns.c.id == campaign.id)
    )
    where = sa.and_(messages.c.campaign_key == key_of(campaign.id), messages.c.sent_at.is_not(None))
    first, last, final = conn.execute(
        sa.select(
            sa.func.min(messages.c.sent_at),
            sa.func.max(messages.c.sent_at),
            sa.select(sa.func.max(messages.c.final_at))
            .where(messages.c.campaign_key == key_of(campaign.id))
            .scalar_subquery(),
        ).where(where)
    ).one()
    report.first_sent = aware(first) if first is not None else None
    report.last_sent = aware(last) if last is not None else None
    if report.state == "completed":
        report.state_since = aware(final) if final is not None else None
        return
    # The last change of the campaign's own state (an operator's cancel or pause, a halt).
    changed = conn.execute(
        sa.select(events.c.at, events.c.detail)
        .where(
            events.c.campaign_id == campaign.id,
            events.c.message_id.is_(None),
            events.c.to_status.is_(None),
        )
        .order_by(events.c.id.desc())
        .limit(1)
    ).first()
    if changed is not None and (changed.detail or {}).get("state") == campaign.state:
        report.state_since = aware(changed.at)


def _template_deliveries(conn: Any, campaign: CampaignRecord, key: Any) -> dict[int, int]:
    """Deliveries per template channel (by its place), for a campaign with several."""
    if campaign.spec.channels is None:
        return {}
    rows = conn.execute(
        sa.select(messages.c.channel, sa.func.count())
        .where(
            messages.c.campaign_key == key,
            messages.c.status == Status.DELIVERED.value,
            messages.c.channel.in_(
                [i for i, c in enumerate(campaign.spec.channel_list) if c.kind == "template"]
            ),
        )
        .group_by(messages.c.channel)
    )
    return {int(channel): int(count) for channel, count in rows}


def _cost(
    campaign: CampaignRecord, billed: list[Any], delivered: dict[int, int] | None = None
) -> float | None:
    """SMS parts billed at the campaign's prices, and each template channel's deliveries
    at its price (``None`` when a price it needs is missing)."""
    total = 0.0
    for index, count in (delivered or {}).items():
        price = getattr(campaign.spec.channel_list[index], "price", None)
        if price is None and count:
            return None
        total += (price or 0) * count
    prices = campaign.spec.prices
    if prices is None:
        return None
    for carrier, parts in billed:
        price = prices.per_part(carrier)
        if price is None:
            return None
        total += price * int(parts)
    return round(total, 2)


def _masked(groups: dict[Any, dict[str, int]]) -> dict[Any, dict[str, int]]:
    """A breakdown by a list column with every phone number in its values masked (a
    column of relatives' numbers, a note holding one): reports never show a whole number.
    Values that mask alike are counted together."""
    from campaigns.phones import mask_text

    merged: dict[Any, dict[str, int]] = {}
    for value, counts in groups.items():
        into = merged.setdefault(mask_text(value) if isinstance(value, str) else value, {})
        for status, count in counts.items():
            into[status] = into.get(status, 0) + count
    return merged
