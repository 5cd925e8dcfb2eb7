"""A campaign's channels, in the order each recipient is tried: e.g. a Zalo notification
first, and the SMS only for those Zalo cannot reach or has not delivered to in time.

In the campaign file (without ``channels``, a campaign has its SMS alone)::

    [[channels]]
    name = "zalo"                     # a label for plans and reports
    kind = "template"                 # a template registered with the provider
    provider = "zalo-oa"              # a provider instance that sends templates
    template = "231432"               # the template's id at the provider
    params = { ten = "{name}", ma = "{code}" }   # each parameter, filled like SMS text
    price = 300                       # per message, in the campaign's currency (the plan)
    deliver_within = "30m"            # no delivery by then: the next channel goes
    when_halted = "next"              # its provider halted (quota, token): "next" channel
                                      # for those still waiting, or "wait" for a resume

    [[channels]]
    name = "sms"
    kind = "text"                     # the campaign's own text, provider, routing, prices

The text channel, when there is one, comes last (it is the fallback of last resort) and
at most once. Each recipient gets at most one successful notification: the next channel
is sent only when the one before ended without reaching them (``unreachable``, failed,
undelivered, expired) or its delivery did not come within ``deliver_within`` of the send
(``ledger.channels.fallback``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from campaigns.durations import parse_duration, write_duration
from campaigns.template import Template, TemplateError, fields_of
from campaigns.text import normalise

NAME = r"^[a-z0-9][a-z0-9_-]{0,19}$"
#: How long a channel waits for its delivery before the next channel goes, by default.
DEFAULT_WITHIN = timedelta(minutes=30)


class TemplateChannel(BaseModel):
    """A channel that sends a template registered with its provider (Zalo ZNS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["template"] = "template"
    name: Annotated[str, Field(pattern=NAME)]
    provider: str
    template: Annotated[str, Field(min_length=1, max_length=64)]
    params: dict[str, str] = Field(default_factory=dict)
    price: float | None = Field(default=None, ge=0)
    deliver_within: timedelta = DEFAULT_WITHIN
    #: Its provider halted (the OA's quota used up, a refresh token refused): ``next``
    #: hands those still waiting to the next channel at once (nobody is left unreached
    #: while a channel remains); ``wait`` keeps them for ``loa provider resume``.
    when_halted: Literal["next", "wait"] = "next"

    @field_validator("deliver_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("deliver_within")
    @classmethod
    def _range(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=1):
            raise ValueError("between 1m and 1d")
        return value

    @field_serializer("deliver_within")
    def _write_duration(self, value: timedelta) -> str:
        return write_duration(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
                raise ValueError(f"{name!r} is not a template parameter's name")
            if not text.strip():
                raise ValueError(f"{name}: empty (ZNS refuses a template's empty value)")
            try:
                fields_of(text)
            except TemplateError as exc:
                raise ValueError(f"{name}: {exc}") from None
            out[name] = normalise(text.strip())
        return out

    @cached_property
    def compiled(self) -> dict[str, Template]:
        """Each parameter's text, compiled (``{field}`` from the recipient's row)."""
        return {name: Template.compile(text, False) for name, text in self.params.items()}

    @property
    def fields(self) -> list[str]:
        """Every list field the parameters use, in order of first use."""
        found: list[str] = []
        for template in self.compiled.values():
            found += [f for f in template.fields if f not in found]
        return found


class TextChannel(BaseModel):
    """The campaign's SMS: its own ``messages``, ``provider``, ``routing`` and ``prices``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["text"] = "text"
    name: Annotated[str, Field(pattern=NAME)] = "sms"


Channel = Annotated[TemplateChannel | TextChannel, Field(discriminator="kind")]

#: A campaign without ``channels``: its SMS alone.
SMS_ONLY: tuple[TextChannel, ...] = (TextChannel(),)


def check_order(channels: tuple[TemplateChannel | TextChannel, ...]) -> None:
    """The rules a list of channels keeps.

    Raises:
        ValueError: none, a name twice, two template channels on one provider, or a
            text channel that is not alone and last.
    """
    if not channels:
        raise ValueError("name at least one channel, or leave `channels` out for SMS alone")
    names = [channel.name for channel in channels]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"channel names must differ: {', '.join(twice)}")
    providers = [c.provider for c in channels if isinstance(c, TemplateChannel)]
    shared = sorted({p for p in providers if providers.count(p) > 1})
    if shared:  # a batch holds one provider's messages: its provider says its channel
        raise ValueError(
            f"two template channels send through provider {shared[0]!r}: give each its "
            "own provider instance (one per Official Account)"
        )
    texts = [i for i, channel in enumerate(channels) if isinstance(channel, TextChannel)]
    if len(texts) > 1 or (texts and texts[0] != len(channels) - 1):
        raise ValueError("the text (SMS) channel comes once, and last: it is the last resort")


def channel_plan(
    channels: tuple[TemplateChannel | TextChannel, ...],
    recipients: int,
    sms_cost: float | None,
    sms_parts: int,
    reach: float | None = None,
    quotas: dict[str, int | None] | None = None,
) -> dict[str, object]:
    """What a multi-channel campaign would send and cost, per channel, for ``recipients``
    planned, whose SMS would be ``sms_parts`` parts costing ``sms_cost`` (the plan's).

    Each template channel is priced per message delivered (Zalo bills ZNS so), its
    price times every recipient at most. ``worst``: nobody reached before the SMS, so
    every recipient gets the SMS (the template channels cost nothing, or as much again
    if their deliveries all came too late: ``worst_with_doubles``). ``expected``: a
    share ``reach`` (0-1) of recipients reached by the template channels, the rest by
    SMS. ``sms_for_everyone``: the cost without them, what ``saved`` is measured against.
    ``quotas``: each template provider's messages a day (the OA's daily quota), when
    known: a channel's row then says how many days its recipients take.

    Returns:
        ``{"channels": [...], "worst": …, "worst_with_doubles": …, "expected": …|None,
        "sms_for_everyone": …, "saved": …|None}``; costs ``None`` without prices.
    """
    rows: list[dict[str, object]] = []
    template_cost: float | None = 0.0
    has_text = False
    for channel in channels:
        if isinstance(channel, TemplateChannel):
            cost = None if channel.price is None else float(round(channel.price * recipients, 2))
            template_cost = None if cost is None or template_cost is None else template_cost + cost
            quota = (quotas or {}).get(channel.provider)
            rows.append(
                {"name": channel.name, "kind": "template", "provider": channel.provider,
                 "recipients": recipients, "messages": recipients, "cost": cost,
                 "deliver_within": write_duration(channel.deliver_within),
                 "daily_quota": quota, "days": -(-recipients // quota) if quota else None,
                 # Beyond the quota the provider halts: "next" sends those by the next
                 # channel the same day, "wait" takes the days above.
                 "when_halted": channel.when_halted,
                 "beyond_quota": max(0, recipients - quota) if quota else 0}
            )  # fmt: skip
        else:
            has_text = True
            rows.append(
                {"name": channel.name, "kind": "text", "recipients": recipients,
                 "parts": sms_parts, "cost": sms_cost}
            )  # fmt: skip
    sms = sms_cost if has_text else 0.0
    worst = sms
    doubles = None if sms is None or template_cost is None else round(sms + template_cost, 2)
    expected = saved = None
    if reach is not None and sms is not None and template_cost is not None:
        expected = round(template_cost * reach + sms * (1 - reach), 2)
        saved = None if sms_cost is None else round(sms_cost - expected, 2)
    return {
        "channels": rows,
        "worst": worst,
        "worst_with_doubles": doubles,
        "reach": reach,
        "expected": expected,
        "sms_for_everyone": sms_cost,
        "saved": saved,
    }
