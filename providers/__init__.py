"""Provider modules, registered in one place.

Settings name provider *instances* (``sandbox``, ``esms-hcm`` …); each has a ``type`` that
picks the module below. Nothing outside this package knows any provider by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

from pydantic import ValidationError

from providers.base import (
    ErrorKind,
    HandsetMessage,
    InboundRequest,
    Inbox,
    OutgoingMessage,
    Provider,
    ProviderConfig,
    Receipt,
    ReceiptSink,
    SendError,
    SendResult,
    Template,
)
from providers.tokens import Tokens, TokenStore

__all__ = [
    "ErrorKind",
    "HandsetMessage",
    "InboundRequest",
    "Inbox",
    "OutgoingMessage",
    "Provider",
    "ProviderConfig",
    "ProviderConfigError",
    "Receipt",
    "ReceiptSink",
    "SendError",
    "SendResult",
    "Template",
    "TokenStore",
    "Tokens",
    "create",
    "validate_config",
]


class _Registry(Mapping[str, type[Provider]]):
    """Provider type (as written in settings) -> implementation, each module imported the
    first time its type is asked for: HTTP clients and SDKs take a tenth of a second or
    more to import, and a command uses only the types its settings name."""

    def __init__(self, places: Mapping[str, str]) -> None:
        self._places = dict(places)

    def __getitem__(self, kind: str) -> type[Provider]:
        module, _, name = self._places[kind].partition(":")
        return getattr(import_module(module), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)


#: Provider type -> "module:class". One line per channel: the only place that lists them.
REGISTRY: Mapping[str, type[Provider]] = _Registry(
    {
        "sandbox": "providers.sandbox:SandboxProvider",
        "esms": "providers.esms:EsmsProvider",
        "twilio": "providers.twilio:TwilioProvider",
        "smpp": "providers.smpp.provider:SmppProvider",
        "zalo_zns": "providers.zalo:ZaloZnsProvider",
    }
)


class ProviderConfigError(ValueError):
    """A provider instance whose settings are unusable; names the instance and field.

    ``instance`` and ``problems`` (field name, or "" for the whole instance, and what is
    wrong) let a caller name the setting in its own terms (an environment variable)."""

    def __init__(self, message: str, instance: str = "", problems: tuple = ()) -> None:
        super().__init__(message)
        self.instance = instance
        self.problems: tuple[tuple[str, str], ...] = problems


def validate_config(name: str, raw: Mapping[str, Any]) -> tuple[type[Provider], ProviderConfig]:
    """Check one provider instance's settings against its type's model.

    Raises:
        ProviderConfigError: unknown type, unknown or missing field, bad value.
    """
    kind = raw.get("type")
    cls = REGISTRY.get(str(kind))
    if cls is None:
        known = ", ".join(sorted(REGISTRY))
        problem = f"unknown type {kind!r} (known: {known})"
        raise ProviderConfigError(f"provider {name!r}: {problem}", name, (("type", problem),))
    try:
        config = cls.config_model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = tuple(
            (".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        )
        said = "; ".join(": ".join(part for part in problem if part) for problem in problems)
        raise ProviderConfigError(f"provider {name!r}: {said}", name, problems) from None
    if cls.reach is not None and config.countries and not config.countries <= cls.reach:
        beyond = ", ".join(sorted(config.countries - cls.reach))
        problem = f"a {cls.type} provider reaches only {', '.join(sorted(cls.reach))}, not {beyond}"
        raise ProviderConfigError(
            f"provider {name!r}: countries: {problem}", name, (("countries", problem),)
        )
    return cls, config


def create(
    name: str,
    raw: Mapping[str, Any],
    receipt_sink: ReceiptSink | None = None,
    inbox: Inbox | None = None,
    tokens: TokenStore | None = None,
) -> Provider:
    """Build the provider instance ``name`` from its settings (``inbox``: where one that
    receives on its own connection stores what arrives; ``tokens``: where one whose
    credentials expire keeps them for every process, ``providers.tokens``)."""
    cls, config = validate_config(name, raw)
    provider = cls(name, config, receipt_sink=receipt_sink, inbox=inbox)
    if tokens is not None:
        provider.tokens = tokens
    return provider
