"""Routing: which provider instance sends each recipient's SMS.

Operators send through several providers at once: a Vietnamese brandname gateway (one
account per carrier, sometimes) for local numbers, an international provider for foreign
tourists' numbers, and a fallback for when a provider stops. In the campaign file::

    provider = "gateway-cskh"                     # the default route

    [routing]
    carriers = { viettel = "gateway-viettel" }    # Vietnamese numbers, by carrier
    countries = { KR = "intl-kr", other = "intl" }
    fallback = ["gateway-backup", "intl"]         # when a route's provider halts, in order

A number's route, the first that applies:

1. a Vietnamese number whose carrier (from its allocation prefix, or the ported-numbers
   file) is named in ``carriers``;
2. its country (ISO 3166 code) named in ``countries``;
3. a foreign number, when ``countries`` has ``other``;
4. the campaign's ``provider``.

Some providers reach only some countries (a Vietnamese gateway sends to Vietnamese numbers
only, ``Provider.countries``). A number routed to a provider that cannot reach it is not
sent anywhere else by guesswork: planning rejects it as ``no_route``, so the plan shows the
gap and the operator adds a route.

``fallback`` is for halts (bad credentials, an exhausted balance: errors only a person can
fix). When a batch's provider halts, its messages not yet handed over move to the first
fallback provider that is not halted and can reach them; the rest wait for
``loa provider resume``. Transient trouble (5xx, 429) is not a halt and moves nothing:
the provider's cooldown and retries handle it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaigns.phones import CARRIER_PREFIXES

#: The ``countries`` key for every foreign country not named.
OTHER = "other"
HOME = "VN"
NO_ROUTE = "no_route"
CARRIERS = frozenset(CARRIER_PREFIXES.values())
_COUNTRY = re.compile(r"^[A-Z]{2}$")

#: What a provider reaches: a set of ISO countries, or ``None`` for anywhere.
Reach = frozenset[str] | None


class RoutingSpec(BaseModel):
    """The ``[routing]`` table of a campaign file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    carriers: dict[str, str] = Field(default_factory=dict)
    countries: dict[str, str] = Field(default_factory=dict)
    fallback: tuple[str, ...] = ()

    @field_validator("carriers")
    @classmethod
    def _carriers(cls, value: dict[str, str]) -> dict[str, str]:
        for carrier in value:
            if carrier not in CARRIERS:
                known = ", ".join(sorted(CARRIERS))
                raise ValueError(f"unknown carrier {carrier!r} (known: {known})")
        return value

    @field_validator("countries", mode="before")
    @classmethod
    def _countries(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for country, provider in value.items():
            key = str(country) if str(country) == OTHER else str(country).upper()
            if key != OTHER and not _COUNTRY.match(key):
                raise ValueError(
                    f"{country!r} is not a two-letter country code such as 'KR', or '{OTHER}'"
                )
            out[key] = provider
        return out

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("fallback")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a provider is named twice")
        return value


class Router:
    """Routes for one campaign, given what each of its providers can reach.

    Parameters:
        default: the campaign's ``provider``.
        spec: its ``[routing]`` table (``None``: everything to ``default``).
        reach: per provider instance, the countries it can send to (missing or ``None``:
            anywhere).
    """

    def __init__(
        self,
        default: str,
        spec: RoutingSpec | None = None,
        reach: Mapping[str, Reach] | None = None,
    ) -> None:
        self.default = default
        self.spec = spec or RoutingSpec()
        self.reach = dict(reach or {})
        self._cache: dict[tuple[str, str | None], str | None] = {}

    def named(self) -> Iterator[tuple[str, str]]:
        """Every provider the routes name, with where (the campaign file's field)."""
        yield "provider", self.default
        for carrier, provider in self.spec.carriers.items():
            yield f"routing.carriers.{carrier}", provider
        for country, provider in self.spec.countries.items():
            yield f"routing.countries.{country}", provider
        for index, provider in enumerate(self.spec.fallback):
            yield f"routing.fallback[{index}]", provider

    def reaches(self, provider: str, country: str) -> bool:
        countries = self.reach.get(provider)
        return countries is None or country in countries

    def route(self, country: str, carrier: str | None) -> str | None:
        """The provider for a number of ``country`` (and ``carrier``, for Vietnam), or
        ``None`` when the route's provider cannot reach it. Cached: a list has a few dozen
        (country, carrier) pairs and a million rows."""
        key = (country, carrier)
        try:
            return self._cache[key]
        except KeyError:
            pass
        spec = self.spec
        provider = spec.carriers.get(carrier) if country == HOME and carrier is not None else None
        if provider is None:
            provider = spec.countries.get(country)
        if provider is None and country != HOME:
            provider = spec.countries.get(OTHER)
        if provider is None:
            provider = self.default
        found = provider if self.reaches(provider, country) else None
        self._cache[key] = found
        return found

    def fallback_for(self, provider: str, halted: set[str]) -> list[str]:
        """Providers that may take over from ``provider`` while it is halted, in order."""
        return [f for f in self.spec.fallback if f != provider and f not in halted]

    def rules(self) -> list[dict[str, str]]:
        """The routes in the order they apply (``loa campaign plan``): each a ``rule``
        (carrier, country, other_countries, default, fallback), the ``value`` it matches
        (a carrier, a country, the fallback's rank) and its ``provider``."""
        spec = self.spec
        found = [
            {"rule": "carrier", "value": carrier, "provider": provider}
            for carrier, provider in spec.carriers.items()
        ]
        found += [
            {"rule": "country", "value": country, "provider": provider}
            for country, provider in spec.countries.items()
            if country != OTHER
        ]
        if OTHER in spec.countries:
            found.append(
                {"rule": "other_countries", "value": "", "provider": spec.countries[OTHER]}
            )
        found.append({"rule": "default", "value": "", "provider": self.default})
        found += [
            {"rule": "fallback", "value": str(rank), "provider": provider}
            for rank, provider in enumerate(spec.fallback, start=1)
        ]
        return found
