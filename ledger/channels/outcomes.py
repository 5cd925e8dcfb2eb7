"""A multi-channel campaign seen per recipient: which channel reached each person, who got
the SMS and why, the doubles, and the money against SMS for everyone.

A recipient's messages (one per channel, ``messages.channel``) are read together, one
row per recipient (a ``GROUP BY`` in the database: nothing per message leaves it):

- **reached by** the first channel whose message was delivered;
- a **double**: reached, and a later channel's message was handed over too (a Zalo
  delivery that came after its SMS went: recorded and counted, never hidden);
- **fell back**: a later channel's message went (queued, or beyond), by why: the
  channel before could not reach them (``unreachable``, ``failed``, ``undelivered``,
  ``expired``), did not deliver in time (``late``), or halted (``halted``);
- **not reached**: by the status of the last message tried (``standby`` and
  ``unneeded`` messages are never "tried").

Every breakdown adds up: ``reached`` (by channel) + ``not_reached`` (by status) is the
recipients; a test holds it so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.channels import TemplateChannel
from campaigns.spec import CampaignSpec
from campaigns.status import Status
from ledger.schema import key_of, messages

_m = messages.c
#: A message handed to its provider (it may have reached the person).
HANDED = (Status.SENDING, Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNKNOWN)
#: A later channel's message that went (or waits to go) because of the one before.
_WENT = (Status.QUEUED, *HANDED, Status.FAILED)
_LATE = (Status.SENT, Status.UNKNOWN, Status.DELIVERED, Status.SENDING)
#: Sent without a single delivery reported, from this many on a channel is said.
SILENT_AFTER = 10


@dataclass
class ChannelOutcomes:
    """Per recipient, across channels (see the module's notes). Counts of recipients."""

    channels: list[str]
    recipients: int = 0
    reached: dict[str, int] = field(default_factory=dict)
    not_reached: dict[str, int] = field(default_factory=dict)
    fell_back: dict[str, int] = field(default_factory=dict)
    doubles: int = 0
    #: Per channel, its messages per status.
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Money: each template channel's deliveries at its price, the SMS parts handed over
    #: at the campaign's prices, and SMS for everyone as planned (the launch's cost).
    spent: float | None = None
    sms_for_everyone: float | None = None
    #: Of ``spent``, the template channels' deliveries.
    template_spent: float | None = None
    #: SMS never sent because an earlier channel reached the person (``unneeded``).
    spared: int = 0

    @property
    def silent(self) -> list[str]:
        """The template channels with many messages sent and not one delivery reported:
        most likely their delivery events do not reach Loa (the webhook not running, the
        provider's secret wrong), and everyone gets the SMS late."""
        found = []
        for name in self.channels[:-1]:
            counts = self.statuses.get(name, {})
            sent = counts.get(Status.SENT.value, 0) + counts.get(Status.UNKNOWN.value, 0)
            if sent >= SILENT_AFTER and not counts.get(Status.DELIVERED.value):
                found.append(name)
        return found

    @property
    def saved(self) -> float | None:
        """The SMS spared (at the plan's average per recipient) less what the template
        channels cost: what sending by Zalo first saved so far. A campaign that reached
        nobody by Zalo saved nothing, whatever it did not send."""
        if self.template_spent is None or self.sms_for_everyone is None or not self.recipients:
            return None
        per_recipient = self.sms_for_everyone / self.recipients
        return round(per_recipient * self.spared - self.template_spent, 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "recipients": self.recipients,
            "reached": self.reached,
            "not_reached": self.not_reached,
            "fell_back": self.fell_back,
            "doubles": self.doubles,
            "statuses": self.statuses,
            "spent": self.spent,
            "template_spent": self.template_spent,
            "sms_for_everyone": self.sms_for_everyone,
            "spared": self.spared,
            "saved": self.saved,
            "silent": self.silent,
        }


def outcomes(
    engine: Engine, campaign_id: str, spec: CampaignSpec, planned_cost: float | None
) -> ChannelOutcomes:
    """The campaign's recipients across its channels. ``planned_cost``: the launch's SMS
    cost for everyone (its intake's ``cost``)."""
    names = [channel.name for channel in spec.channel_list]
    count = len(names)
    status_of = [
        sa.func.max(sa.case((_m.channel == i, _m.status), else_=None)).label(f"s{i}")
        for i in range(count)
    ]
    per_recipient = (
        sa.select(*status_of)
        .where(_m.campaign_key == key_of(campaign_id))
        .group_by(_m.recipient)
        .subquery()
    )
    columns = [per_recipient.c[f"s{i}"] for i in range(count)]
    query = sa.select(*columns, sa.func.count()).group_by(*columns)
    found = ChannelOutcomes(names, sms_for_everyone=planned_cost)
    with engine.connect() as conn:
        for *statuses, recipients in conn.execute(query):
            _tally(found, names, [Status(s) if s else None for s in statuses], recipients)
        by_channel = conn.execute(
            sa.select(_m.channel, _m.status, sa.func.count())
            .where(_m.campaign_key == key_of(campaign_id))
            .group_by(_m.channel, _m.status)
        ).all()
        for channel, status, number in by_channel:
            if channel < count:
                found.statuses.setdefault(names[channel], {})[status] = number
        found.spent, found.template_spent = _spent(conn, campaign_id, spec, found)
    text = spec.text_channel
    sms = None if text is None else spec.channel_list[text].name
    found.spared = found.statuses.get(sms, {}).get(Status.UNNEEDED.value, 0) if sms else 0
    return found


def _tally(found: ChannelOutcomes, names: list[str], statuses: list, recipients: int) -> None:
    found.recipients += recipients
    reached = next((i for i, s in enumerate(statuses) if s is Status.DELIVERED), None)
    for i in range(1, len(statuses)):
        before, now = statuses[i - 1], statuses[i]
        if now in _WENT and before is not None:
            why = "late" if before in _LATE else before.value
            if before is Status.CANCELLED:  # only a halted channel's are followed
                why = "halted"
            found.fell_back[why] = found.fell_back.get(why, 0) + recipients
    if reached is not None:
        name = names[reached]
        found.reached[name] = found.reached.get(name, 0) + recipients
        if any(s in HANDED for s in statuses[reached + 1 :]):
            found.doubles += recipients
        return
    tried = [s for s in statuses if s not in (None, Status.STANDBY, Status.UNNEEDED)]
    last = tried[-1] if tried else next(s for s in statuses if s is not None)
    found.not_reached[last.value] = found.not_reached.get(last.value, 0) + recipients


def _spent(
    conn: Any, campaign_id: str, spec: CampaignSpec, found: ChannelOutcomes
) -> tuple[float | None, float | None]:
    """What the campaign cost so far, and of it the template channels': their deliveries
    at their prices, and SMS parts handed over at the campaign's prices (``None`` when a
    price is missing)."""
    total, templates = 0.0, 0.0
    for index, channel in enumerate(spec.channel_list):
        if isinstance(channel, TemplateChannel):
            delivered = found.statuses.get(channel.name, {}).get(Status.DELIVERED.value, 0)
            if delivered and channel.price is None:
                return None, None
            total += delivered * (channel.price or 0)
            templates += delivered * (channel.price or 0)
            continue
        rows = conn.execute(
            sa.select(_m.carrier, sa.func.sum(_m.parts))
            .where(
                _m.campaign_key == key_of(campaign_id),
                _m.channel == index,
                _m.status.in_([s.value for s in HANDED]),
            )
            .group_by(_m.carrier)
        ).all()
        for carrier, parts in rows:
            price = spec.prices.per_part(carrier) if spec.prices else None
            if price is None:
                return None, round(templates, 2)
            total += price * int(parts or 0)
    return round(total, 2), round(templates, 2)
