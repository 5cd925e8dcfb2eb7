"""The campaign file: a TOML document validated by ``CampaignSpec``.

Example (``examples/bluezone.toml`` is a complete one; ``examples/ad-sale.toml`` shows an
advertising campaign)::

    id = "bluezone-ninh-thuan"          # a-z, 0-9, '.', '_', '-'; at most 64 characters
    name = "Cài đặt Bluezone"           # free text, for people
    category = "public_service"         # or "advertising"
    brandname = "NinhThuan"             # the sender: <= 11 of A-Z a-z 0-9 - _ . space
    provider = "sandbox"                # required: a provider instance from the settings
    validity = "12h"                    # how long after launch a message may still go out
    default_language = "vi"             # for recipients without a `language` column
    suppress = ["opt_out"]              # lists checked at planning (advertising: + "dnc")
    sending_hours = "07:00-21:00"       # Vietnam time; advertising: within 07:00-22:00 (the default)

    [messages]                          # one template per language; {field} from the list
    vi = "Kính gửi {name}: …"
    en = { text = "Dear {name}: …" }
    # vi = { text = "…", strip_diacritics = true }   # "không dấu": fewer parts, shown in the plan

    [columns]                           # optional: template field -> list header
    name = "Họ và tên"

    [prices]                            # optional: per SMS part, by carrier, for the plan
    currency = "VND"
    default = 850
    viettel = 800

    [routing]                           # optional: several providers (campaigns/routing.py)
    carriers = { viettel = "gateway-viettel" }
    countries = { other = "intl" }    # foreign numbers
    fallback = ["gateway-backup"]          # when a provider halts

Advertising campaigns also need ``opt_out_instruction`` and either texts that start with
``[QC]`` (or ``[AD]``) and end with that instruction, or ``add_ad_markers = true``.
Unknown keys are errors, so a misspelt key is never silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from campaigns.channels import SMS_ONLY, Channel, TemplateChannel, TextChannel, check_order
from campaigns.durations import parse_duration, write_duration
from campaigns.goals import GoalSpec
from campaigns.hours import ADVERTISING_HOURS, SendingWindow
from campaigns.routing import Reach, Router, RoutingSpec
from campaigns.template import Template, TemplateError, fields_of
from campaigns.text import normalise, shows_anything

BRANDNAME = re.compile(r"^[A-Za-z0-9_. -]{1,11}$")
#: How long a campaign may keep sending: a week covers any public notice we know of.
MAX_VALIDITY = timedelta(days=7)
AD_LABELS = ("[QC]", "[AD]")
#: Number lists in the ledger: opt-outs, the Do-Not-Call register, and the province's
#: residents (arrivals welcome visitors only; a campaign may also leave residents out).
SUPPRESSION_LISTS = ("opt_out", "dnc", "residents")
#: What advertising checks unless its file says: refusals and the register.
ADVERTISING_SUPPRESSION = ("opt_out", "dnc")


class Category(StrEnum):
    PUBLIC_SERVICE = "public_service"
    ADVERTISING = "advertising"


class SpecError(ValueError):
    """A campaign file that cannot be used; the message names the file and the field."""


class MessageText(BaseModel):
    """One language's template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    strip_diacritics: bool = False


class Prices(BaseModel):
    """Price of one SMS part by carrier (``default`` for the others), for cost estimates."""

    model_config = ConfigDict(extra="allow", frozen=True)

    currency: str = "VND"
    default: float | None = None

    @model_validator(mode="after")
    def _numbers(self) -> Prices:
        for carrier, price in (self.model_extra or {}).items():
            if not isinstance(price, int | float) or price < 0:
                raise ValueError(f"price for {carrier!r} must be a number >= 0")
        return self

    def per_part(self, carrier: str | None) -> float | None:
        extra = self.model_extra or {}
        return extra.get(carrier or "", self.default)


def check_brandname(value: str) -> str:
    """``value`` if it may be a sender (a campaign's brandname, a test SMS's sender): 1 to
    11 letters, digits, ``-``, ``_``, ``.`` or spaces, not digits only.

    Raises:
        ValueError: it may not, saying why.
    """
    if not BRANDNAME.fullmatch(value):
        raise ValueError("at most 11 characters, only letters, digits, '-', '_', '.' and space")
    if value.replace(" ", "").isdigit():
        raise ValueError("a brandname cannot be digits only")
    return value


@lru_cache(maxsize=256)
def _compiled(text: str, strip: bool) -> Template:
    return Template.compile(text, strip)


class CampaignSpec(BaseModel):
    """A validated campaign file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Category
    brandname: str
    provider: str
    validity: timedelta = timedelta(hours=24)
    default_language: str = "vi"
    messages: dict[str, MessageText]
    columns: dict[str, str] = Field(default_factory=dict)
    suppress: tuple[str, ...] | None = None
    sending_hours: SendingWindow | None = None
    opt_out_instruction: str | None = None
    add_ad_markers: bool = False
    prices: Prices | None = None
    routing: RoutingSpec | None = None
    #: Zalo first, then SMS … (``campaigns.channels``); unset: the SMS alone.
    channels: tuple[Channel, ...] | None = None
    #: The outcome the campaign serves (``campaigns.goals``), its population read.
    goal: GoalSpec | None = None

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[Channel, ...] | None) -> tuple[Channel, ...] | None:
        if value is not None:
            check_order(value)
        return value

    @field_validator("brandname")
    @classmethod
    def _brandname(cls, value: str) -> str:
        return check_brandname(value)

    @field_validator("validity", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("validity")
    @classmethod
    def _validity_range(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= MAX_VALIDITY:
            raise ValueError("must be more than 0 and at most 7d")
        return value

    @field_serializer("validity")
    def _write_duration(self, value: timedelta) -> str:
        return write_duration(value)

    @field_validator("messages", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError('at least one message text is needed, e.g. vi = "…"')
        out = {}
        for lang, item in value.items():
            if not re.fullmatch(r"[a-z]{2,3}", lang):
                raise ValueError(f"{lang!r} is not a language code such as 'vi' or 'en'")
            entry = {"text": item} if isinstance(item, str) else item
            text = entry.get("text") if isinstance(entry, dict) else None
            if not isinstance(text, str) or not shows_anything(text):
                raise ValueError(f"the {lang!r} text is empty (or shows nothing)")
            try:
                fields_of(text)
            except TemplateError as exc:
                raise ValueError(f"{lang}: {exc}") from None
            out[lang] = {**entry, "text": normalise(text.strip())}
        return out

    @field_validator("sending_hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        return SendingWindow.parse(value) if isinstance(value, str) else value

    @field_serializer("sending_hours")
    def _write_hours(self, value: SendingWindow | None) -> str | None:
        return None if value is None else str(value)

    @field_validator("suppress")
    @classmethod
    def _lists(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in SUPPRESSION_LISTS:
                raise ValueError(f"unknown list {name!r} (known: {', '.join(SUPPRESSION_LISTS)})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.default_language not in self.messages:
            raise ValueError(
                f"default_language {self.default_language!r} has no text in [messages]"
            )
        if self.category is Category.ADVERTISING:
            self._advertising_rules()
            if self.sending_hours is not None and not ADVERTISING_HOURS.contains(
                self.sending_hours
            ):
                raise ValueError(
                    f"sending_hours: advertising may only be sent within {ADVERTISING_HOURS}"
                )
            if self.suppress is not None and "dnc" not in self.suppress:
                raise ValueError("suppress: advertising must check the Do-Not-Call list ('dnc')")
        return self

    def _advertising_rules(self) -> None:
        """Decree 91/2020: a label first, an opt-out instruction last. Added when asked,
        otherwise checked, per language."""
        instruction = (self.opt_out_instruction or "").strip()
        if not instruction:
            raise ValueError("opt_out_instruction: advertising must tell recipients how to refuse")
        fixed = {}
        for lang, message in self.messages.items():
            text = message.text
            if self.add_ad_markers:
                if not text.startswith(AD_LABELS):
                    text = f"{AD_LABELS[0]} {text}"
                if not text.endswith(instruction):
                    text = f"{text} {instruction}"
                fixed[lang] = message.model_copy(update={"text": text})
            elif not text.startswith(AD_LABELS):
                raise ValueError(
                    f"messages.{lang}: an advertising text must start with [QC] (or set add_ad_markers = true)"
                )
            elif not text.endswith(instruction):
                raise ValueError(
                    f"messages.{lang}: an advertising text must end with the opt_out_instruction"
                )
        if fixed:
            object.__setattr__(self, "messages", {**self.messages, **fixed})

    @property
    def window(self) -> SendingWindow | None:
        """When this campaign may send: its own hours, or 07:00-22:00 for advertising."""
        if self.sending_hours is not None:
            return self.sending_hours
        return ADVERTISING_HOURS if self.category is Category.ADVERTISING else None

    def expires_unsent(self, start: datetime) -> tuple[datetime, datetime] | None:
        """``(first sending moment, end of validity)`` when a campaign launched at
        ``start`` (aware) could not send a single message before its validity ends: the
        sending hours open only after it. ``None`` when it can."""
        first = self.window.next_opening(start) if self.window is not None else start
        end = start + self.validity
        return (first, end) if first >= end else None

    @property
    def suppression_lists(self) -> tuple[str, ...]:
        """The lists checked at planning (defaults: opt-out always; DNC for advertising)."""
        if self.suppress is not None:
            return self.suppress
        return ADVERTISING_SUPPRESSION if self.category is Category.ADVERTISING else ("opt_out",)

    @property
    def channel_list(self) -> tuple[TemplateChannel | TextChannel, ...]:
        """The channels in the order each recipient is tried (the SMS alone by default)."""
        return self.channels or SMS_ONLY

    @property
    def text_channel(self) -> int | None:
        """The SMS (text) channel's place in ``channel_list`` (its messages are the SMS
        parts billed); ``None`` for template channels alone. 0 without ``channels``."""
        return next((i for i, c in enumerate(self.channel_list) if c.kind == "text"), None)

    def template_channel(self, provider: str) -> tuple[int, TemplateChannel] | None:
        """The template channel sent through ``provider`` and its place, if any (a batch
        holds one provider's messages, so its provider says which channel it is)."""
        for index, channel in enumerate(self.channel_list):
            if isinstance(channel, TemplateChannel) and channel.provider == provider:
                return index, channel
        return None

    def router(self, reach: dict[str, Reach] | None = None) -> Router:
        """This campaign's routes (``campaigns.routing``), given what providers reach."""
        return Router(self.provider, self.routing, reach)

    def template(self, language: str) -> Template:
        message = self.messages[language]
        return _compiled(message.text, message.strip_diacritics)

    def language_for(self, language: str | None) -> str:
        """The language actually used for a recipient whose list says ``language``."""
        if language and language in self.messages:
            return language
        return self.default_language

    def template_fields(self) -> list[str]:
        """Every field any template uses."""
        names: list[str] = []
        for lang in self.messages:
            names += [f for f in self.template(lang).fields if f not in names]
        return names


#: What a missing key needs, said where pydantic would say only "Field required".
REQUIRED_HINTS = {
    # No default on purpose: a campaign must not go out through a provider nobody chose
    # (a simulated one would send nothing; a real one, what was meant as a rehearsal).
    "provider": "required: the provider instance that sends this campaign, e.g. provider = "
    '"gateway" (`loa provider list` names those configured)',
}


def _describe(error: ValidationError, prefix: str = "") -> str:
    parts = []
    for item in error.errors():
        where = prefix + ".".join(str(p) for p in item["loc"]) or "(file)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = REQUIRED_HINTS.get(where.removeprefix(prefix), "required")
        parts.append(f"{where}: {message}" if where != "(file)" else message)
    return "; ".join(parts)


def read_toml(path: Path, what: str = "campaign file") -> dict[str, Any]:
    """A TOML file's tables.

    Raises:
        SpecError: missing, unreadable, not UTF-8 or not TOML; naming the file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        # utf-8-sig: a BOM, as Windows Notepad saves UTF-8, is no TOML statement.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None


def validated(model: type[BaseModel], data: Any, path: Path, prefix: str = "") -> Any:
    """``model`` from ``data``; a ``SpecError`` naming the file and each field (after
    ``prefix``, the table it sits in) otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {_describe(exc, prefix)}") from None


def load_spec(path: Path, *, beside_only: bool = False) -> CampaignSpec:
    """Read and validate a campaign file. ``beside_only``: its goal's files named by their
    names alone and read beside it (``campaigns.goals.resolve_goal``; the API's uploads).

    Raises:
        SpecError: the file is missing, unreadable, not TOML, or not a valid campaign;
            the message starts with the file's path and names the field.
    """
    data = read_toml(path)
    if isinstance(data.get("columns"), dict) and "goal" in data["columns"]:
        # TOML put a `goal = ...` written after [columns] into that table: said, not a
        # campaign silently serving no goal.
        raise SpecError(f"{path}: columns.goal: `goal = ...` belongs before the first "
                        "[table] of the file; here it fell into [columns]")  # fmt: skip
    if data.get("goal") is not None:
        from campaigns.goals import GoalError, resolve_goal

        try:
            goal = resolve_goal(data["goal"], path.parent, beside_only=beside_only)
            data["goal"] = goal.model_dump()
        except GoalError as exc:
            raise SpecError(f"{path}: goal: {exc}") from None
    return validated(CampaignSpec, data, path)
