"""What a campaign waits for, and when it may be done: what ``loa campaign status`` says
beside its counts, so that "running" never hides a campaign that sends nothing.

A worker decides whether a batch goes now with a few checks, in this order
(``worker.sending.dispatch.send_batch``): the campaign's state, its provider's halt
(``provider_halts``), the sending hours (``campaigns.hours.held_until``), then, while it
sends, the provider's cooldown (``worker.sending.cooldown``) and rate (``worker.sending.gate``).
``decide`` asks the same questions of the same data, so the status and the worker
cannot disagree. Its answer, ``WaitingFor.reason``:

=================  =====================================================  ================
reason             the campaign …                                         time
=================  =====================================================  ================
scheduled          was launched with ``--at`` and has not started          until its start
paused             was paused by an operator                              since the pause
validity           still has queued messages, but its validity is over    since its end
sending_hours      is outside its sending hours                           until they open
provider_halted    has every provider that holds its messages halted      since the halt
cooldown           has every such provider cooling down (5xx, 429)        until it ends
fallback           has a later channel's messages standing by for the one    until the
                   before (Zalo's deliveries, or its window)                 window ends
receipts           has nothing left to send; sent messages await receipts until the window
=================  =====================================================  ================

``None``: messages are going out (or the campaign is complete, or cancelled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.hours import VIETNAM, held_until, sending_ends
from campaigns.status import Status
from ledger.schema import campaigns, events, key_of, messages

if TYPE_CHECKING:
    from ledger.summary import CampaignRecord

#: Every reason ``decide`` may give, in the order it looks for them.
REASONS = (
    "scheduled",
    "paused",
    "validity",
    "sending_hours",
    "provider_halted",
    "cooldown",
    "fallback",
    "receipts",
)

_IN_FLIGHT = (Status.QUEUED.value, Status.SENDING.value)


def vietnam_time(moment: datetime | None) -> str | None:
    """ISO 8601 in Vietnam's time with its offset (``2026-12-01T07:00:00+07:00``)."""
    return None if moment is None else moment.astimezone(VIETNAM).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WaitingFor:
    """Why nothing (more) of a campaign goes out now.

    Attributes:
        reason: one of ``REASONS``.
        until: when it ends by itself (aware), if it does.
        since: when it began (aware), when known.
        providers: the provider instances concerned (halts, cooldowns).
        why: the cause in words (a halt's error, a pause's reason, the hours).
        lifted_by: the command that ends it, when time alone does not.
        messages: how many messages wait for it.
    """

    reason: str
    until: datetime | None = None
    since: datetime | None = None
    providers: tuple[str, ...] = ()
    why: str | None = None
    lifted_by: str | None = None
    messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Always the same keys; times in ISO 8601, Vietnam's time; null when unknown."""
        return {
            "reason": self.reason,
            "until": vietnam_time(self.until),
            "since": vietnam_time(self.since),
            "providers": list(self.providers),
            "why": self.why,
            "lifted_by": self.lifted_by,
            "messages": self.messages,
        }


@dataclass(frozen=True)
class ProviderView:
    """One provider instance of a campaign, as far as its waiting goes.

    Attributes:
        queued, sending: the campaign's messages waiting for it, and in flight.
        parts: the parts of those messages.
        halted: ``(why, since)`` when it is halted.
        cooldown_seconds: seconds left in its cooldown (0: none); ``None`` when this
            process cannot see it (embedded: it lives in the sending process's memory).
        rate: what the worker aims at, in ``rate_unit`` a second (the agreed rate, the
            sender's when lower, less the headroom); ``None`` without an agreed rate.
        receipt_window: how long after sending a receipt may still come.
    """

    name: str
    queued: int = 0
    sending: int = 0
    parts: int = 0
    halted: tuple[str, datetime] | None = None
    cooldown_seconds: float | None = 0.0
    rate: float | None = None
    rate_unit: str = "messages"
    receipt_window: timedelta = timedelta(hours=72)

    @property
    def remaining(self) -> int:
        return self.queued + self.sending

    @property
    def units(self) -> int:
        """What is left, in the unit its rate counts."""
        return self.parts if self.rate_unit == "parts" else self.remaining


@dataclass(frozen=True)
class Progress:
    """Ledger facts ``decide`` needs beside the counts (``facts`` reads them)."""

    state_since: datetime | None = None  # when the stored state (paused …) was set
    start_at: datetime | None = None  # a scheduled campaign's start
    last_sent: Mapping[str, datetime] | None = None  # per provider: latest still `sent`


def facts(
    engine: Engine, campaign_id: str, state: str, last_sent: dict[str, datetime] | None = None
) -> Progress:
    """When the campaign's stored ``state`` was set, its start time (``--at``), and per
    provider the latest sending of a message still waiting for its receipt (read from the
    messages unless given: ``ledger.tally.Tally.last_sent``)."""
    with engine.connect() as conn:
        start_at = conn.scalar(sa.select(campaigns.c.start_at).where(campaigns.c.id == campaign_id))
        # The latest campaign-level event that set this state (``set_campaign_state``).
        since = conn.scalar(
            sa.select(events.c.at)
            .where(
                events.c.campaign_id == campaign_id,
                events.c.message_id.is_(None),
                events.c.detail["state"].as_string() == state,
            )
            .order_by(events.c.id.desc())
            .limit(1)
        )
        if last_sent is not None:
            return Progress(since, start_at, last_sent)
        last_sent = dict(
            conn.execute(
                sa.select(messages.c.provider, sa.func.max(messages.c.sent_at))
                .where(
                    messages.c.campaign_key == key_of(campaign_id),
                    messages.c.status == Status.SENT.value,
                )
                .group_by(messages.c.provider)
            ).all()
        )
    return Progress(since, start_at, {k: v for k, v in last_sent.items() if v is not None})


def remaining(engine: Engine, campaign_id: str) -> dict[str, tuple[int, int, int]]:
    """Per provider: ``(queued, sending, parts of both)`` of the campaign's messages."""
    query = (
        sa.select(
            messages.c.provider, messages.c.status, sa.func.count(), sa.func.sum(messages.c.parts)
        )
        .where(messages.c.campaign_key == key_of(campaign_id), messages.c.status.in_(_IN_FLIGHT))
        .group_by(messages.c.provider, messages.c.status)
    )
    found: dict[str, tuple[int, int, int]] = {}
    with engine.connect() as conn:
        for provider, status, count, parts in conn.execute(query):
            queued, sending, total = found.get(provider, (0, 0, 0))
            if status == Status.QUEUED.value:
                queued += int(count)
            else:
                sending += int(count)
            found[provider] = (queued, sending, total + int(parts or 0))
    return found


def decide(
    campaign: CampaignRecord,
    statuses: Mapping[Status, int],
    providers: Mapping[str, ProviderView],
    moment: datetime,
    progress: Progress,
) -> WaitingFor | None:
    """What ``campaign`` waits for at ``moment`` (see the module's table), or ``None``
    when its messages are going out, or it is complete or cancelled."""
    queued, sending = statuses[Status.QUEUED], statuses[Status.SENDING]
    state = campaign.state
    if state == "scheduled":
        return WaitingFor(
            "scheduled",
            until=progress.start_at,
            why="launched to start later (--at)",
            lifted_by="loa scheduler (at the start time)",
            messages=queued,
        )
    if state == "paused":
        return WaitingFor(
            "paused",
            since=progress.state_since,
            why=campaign.state_reason,
            lifted_by=f"loa campaign resume {campaign.id}",
            messages=queued + sending,
        )
    if state != "running":
        return None
    if queued + sending == 0:
        sent, standing = statuses[Status.SENT], statuses.get(Status.STANDBY, 0)
        if standing:  # later channels' messages wait for the deliveries of the one before
            windows = [getattr(c, "deliver_within", None) for c in campaign.spec.channel_list[:-1]]
            longest = max((w for w in windows if w is not None), default=None)
            last = max((progress.last_sent or {}).values(), default=None)
            return WaitingFor(
                "fallback",
                until=None if last is None or longest is None else last + longest,
                why="the next channel (SMS) waits for the channel before: sent when it "
                "cannot reach a person or has not delivered within its window",
                lifted_by="the fallback sweep (loa worker, every 2 s)",
                messages=standing,
            )
        if not sent:
            return None
        due = [
            at + providers[name].receipt_window if name in providers else at
            for name, at in (progress.last_sent or {}).items()
        ]
        return WaitingFor(
            "receipts",
            until=max(due, default=None),
            why="nothing left to send; a message with no receipt by then becomes unknown",
            messages=sent,
        )
    if queued and moment >= campaign.valid_until:
        return WaitingFor(
            "validity",
            since=campaign.valid_until,
            why="the validity is over: what is still queued expires unsent",
            lifted_by="loa finalise (loa worker does it every five minutes)",
            messages=queued,
        )
    window = campaign.spec.window
    opening = held_until(window, moment, campaign.valid_until)
    if opening is not None:
        why = f"sending hours {window} (Vietnam time)"
        if opening >= campaign.valid_until:
            why += "; the validity ends before they open: what is left will expire unsent"
        return WaitingFor("sending_hours", until=opening, why=why, messages=queued + sending)
    holding = [p for p in providers.values() if p.remaining]
    going = [p for p in holding if p.halted is None and not p.cooldown_seconds]
    if going or not holding:
        return None
    cooling = [p for p in holding if p.halted is None]
    if cooling:
        ends = min(p.cooldown_seconds or 0.0 for p in cooling)
        return WaitingFor(
            "cooldown",
            until=moment + timedelta(seconds=ends),
            providers=tuple(p.name for p in cooling),
            why="the provider said it is down or overloaded (5xx, 429): every worker waits",
            messages=sum(p.remaining for p in cooling),
        )
    halts = [(p.name, *p.halted) for p in holding if p.halted is not None]
    return WaitingFor(
        "provider_halted",
        since=min(at for _, _, at in halts),
        providers=tuple(name for name, _, _ in halts),
        why="; ".join(f"{name}: {why}" for name, why, _ in halts),
        lifted_by="; ".join(f"loa provider resume {name}" for name, _, _ in halts),
        messages=sum(p.remaining for p in holding),
    )


@dataclass(frozen=True)
class Estimate:
    """When the sending may be done.

    Attributes:
        seconds: time left until the last message is handed over; 0 when nothing is
            left to send; ``None`` while it waits for someone (paused, halted), for its
            hours or its start (see ``resumes_at``), or without any rate to go by.
        finishes_at: the moment that is (aware), sending only inside the hours.
        resumes_at: when a campaign waiting for its hours or its start goes on.
        after_validity: the estimate ends after the validity: some would expire.
        per_provider: each provider's seconds left (``None``: cannot tell).
    """

    seconds: int | None = None
    finishes_at: datetime | None = None
    resumes_at: datetime | None = None
    after_validity: bool = False
    per_provider: Mapping[str, int | None] | None = None


def estimate(
    campaign: CampaignRecord,
    providers: Mapping[str, ProviderView],
    waiting: WaitingFor | None,
    moment: datetime,
    measured_rate: float,
) -> Estimate:
    """The time left at each provider's rate for what it still holds (parts or messages,
    as the rate counts), sending only inside the hours; a provider without an agreed rate
    goes at ``measured_rate`` (messages a second lately, the campaign's), and a cooling
    one from the end of its cooldown. The providers send side by side: the slowest ends
    it. Only an estimate: other campaigns on the same provider share its rate."""
    reason = waiting.reason if waiting else None
    if reason in ("scheduled", "sending_hours"):
        return Estimate(resumes_at=waiting.until if waiting else None)
    if reason in ("paused", "validity", "provider_halted"):
        return Estimate()
    holding = {name: p for name, p in providers.items() if p.remaining}
    if not holding:
        return Estimate(seconds=0, per_provider={name: 0 for name in providers})
    window = campaign.spec.window
    ends: dict[str, datetime | None] = {}
    for name, provider in holding.items():
        rate = provider.rate if provider.rate is not None else measured_rate
        if provider.halted is not None or not rate:
            ends[name] = None
            continue
        start = moment + timedelta(seconds=provider.cooldown_seconds or 0.0)
        ends[name] = sending_ends(window, start, provider.units / rate)
    per_provider = {
        name: None if end is None else max(0, round((end - moment).total_seconds()))
        for name, end in ends.items()
    }
    per_provider.update({name: 0 for name in providers if name not in holding})
    known = [end for end in ends.values() if end is not None]
    if len(known) < len(ends):  # a halted provider, or no rate to go by
        return Estimate(per_provider=per_provider)
    finish = max(known)
    return Estimate(
        seconds=max(0, round((finish - moment).total_seconds())),
        finishes_at=finish,
        after_validity=finish > campaign.valid_until,
        per_provider=per_provider,
    )
