"""The campaign file: a TOML document validated by ``CampaignSpec``.

Example (``examples/bluezone.toml`` is a complete one)::

    id = "bluezone-ninh-thuan"          # a-z, 0-9, '.', '_', '-'; at most 64 characters
    name = "Cài đặt Bluezone"           # free text, for people
    category = "public_service"         # or "advertising"
    brandname = "NinhThuan"             # sender shown on the phone: <= 11 of A-Z a-z 0-9 - _ . space
    provider = "sandbox"                # a provider instance from the settings
    validity = "12h"                    # how long after launch a message may still go out
    default_language = "vi"

    [messages]                          # one text per language; recipients with a
    vi = "Sở TT&TT Ninh Thuận: …"       # `language` column get theirs, others the default
    en = "Ninh Thuan DIC: …"

Unknown keys are errors, so a misspelt key is never silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from campaigns.text import normalise

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
BRANDNAME = re.compile(r"^[A-Za-z0-9_. -]{1,11}$")
#: How long a campaign may keep sending: a week covers any public notice we know of.
MAX_VALIDITY = timedelta(days=7)


class Category(StrEnum):
    PUBLIC_SERVICE = "public_service"
    ADVERTISING = "advertising"


class SpecError(ValueError):
    """A campaign file that cannot be used; the message names the file and the field."""


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
    messages: dict[str, str]

    @field_validator("brandname")
    @classmethod
    def _brandname(cls, value: str) -> str:
        if not BRANDNAME.match(value):
            raise ValueError("at most 11 characters, only letters, digits, '-', '_', '.' and space")
        if value.replace(" ", "").isdigit():
            raise ValueError("a brandname cannot be digits only")
        return value

    @field_validator("validity", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if not match:
                raise ValueError("write a duration such as '30m', '12h' or '2d'")
            return timedelta(**{_UNITS[match[2]]: int(match[1])})
        return value

    @field_validator("validity")
    @classmethod
    def _validity_range(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= MAX_VALIDITY:
            raise ValueError("must be more than 0 and at most 7d")
        return value

    @field_serializer("validity")
    def _write_duration(self, value: timedelta) -> str:
        # Written back in the file's own notation, so a stored spec validates again.
        return f"{int(value.total_seconds() // 60)}m"

    @field_validator("messages")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one message text is needed")
        for lang, text in value.items():
            if not re.fullmatch(r"[a-z]{2,3}", lang):
                raise ValueError(f"{lang!r} is not a language code such as 'vi' or 'en'")
            if not text.strip():
                raise ValueError(f"the {lang!r} text is empty")
        return {lang: normalise(text.strip()) for lang, text in value.items()}

    @model_validator(mode="after")
    def _default_language_has_text(self) -> CampaignSpec:
        if self.default_language not in self.messages:
            raise ValueError(
                f"default_language {self.default_language!r} has no text in [messages]"
            )
        return self

    def text_for(self, language: str | None) -> tuple[str, str]:
        """The language actually used for a recipient, and its text."""
        if language and language in self.messages:
            return language, self.messages[language]
        return self.default_language, self.messages[self.default_language]


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(file)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def load_spec(path: Path) -> CampaignSpec:
    """Read and validate a campaign file.

    Raises:
        SpecError: the file is missing, unreadable, not TOML, or not a valid campaign;
            the message starts with the file's path and names the field.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read campaign file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {_describe(exc)}") from None
