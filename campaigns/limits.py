"""What a provider takes in one message, and a plan's texts held against it.

Each provider module states its type's limits once (``providers.base.Provider.limits``,
each figure with its source); planning asks the provider instances a campaign's routes
name for theirs (``worker.campaign.planning``), so nothing here knows a provider by name. A
message is held against every provider it may go through: its route's, and each fallback
that reaches its number (a halt hands it over). A text over a hard limit would be refused
at every send: the plan stops before launch, naming the provider instance, the limit and
the text's size, and for a template the rows whose filled text is over. Over an advised
limit the provider still sends it (split, shown in pieces, delivered less surely): the
plan warns. Each limit is judged on its own, the hard apart from the advised.

Characters are counted as Unicode code points of the NFC text (what the recipient sees);
parts as the carrier bills them (``campaigns.text.segments``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

#: Rows named in a message about one limit (the count covers them all).
ROWS_SHOWN = 5


def figure(value: int) -> str:
    """An integer the Vietnamese way: ``1600`` -> ``1.600``."""
    return f"{value:,}".replace(",", ".")


def _count(value: int, noun: str) -> str:
    return f"{figure(value)} {noun}" + ("" if value == 1 else "s")


@dataclass(frozen=True, slots=True)
class Limits:
    """A provider type's limits for one message; ``None``: it states none.

    Attributes:
        max_characters: the longest body it takes, in characters; longer is refused.
        max_parts: the most billed parts it takes; more is refused.
        max_sender: the longest sender (brandname, alphanumeric sender id), in characters.
        advised_characters, advised_parts: longer is still sent, but the provider
            advises against it (``advice`` says why): the plan warns.
        advice: why a text beyond the advised size suffers, for the warning.
    """

    max_characters: int | None = None
    max_parts: int | None = None
    max_sender: int | None = None
    advised_characters: int | None = None
    advised_parts: int | None = None
    advice: str = ""

    @property
    def on_text(self) -> bool:
        """Whether any limit applies to a message's text (else nothing to check per row)."""
        return any(
            limit is not None
            for limit in (
                self.max_characters,
                self.max_parts,
                self.advised_characters,
                self.advised_parts,
            )
        )

    def exceeded(self, characters: int, parts: int) -> list[tuple[str, int, bool]]:
        """The limits a text of ``characters`` and ``parts`` goes beyond, each as
        ``(unit, limit, hard)``: ``unit`` is ``"characters"`` or ``"parts"``, ``hard``
        whether the provider refuses it (else it only advises against it). A hard limit
        exceeded hides the advice on the same unit."""
        found: list[tuple[str, int, bool]] = []
        for unit, size, hard, advised in (
            ("characters", characters, self.max_characters, self.advised_characters),
            ("parts", parts, self.max_parts, self.advised_parts),
        ):
            if hard is not None and size > hard:
                found.append((unit, hard, True))
            elif advised is not None and size > advised:
                found.append((unit, advised, False))
        return found


@dataclass
class Excess:
    """Texts beyond one limit of one provider instance, in one language.

    ``hard``: a limit the provider refuses beyond, else one it advises (each is its own
    record: a row over the hard limit is never counted against the advice, nor the
    reverse). ``fallback``: the texts are of recipients routed elsewhere, whom this
    provider may take over as one of the campaign's fallbacks (``routing.fallback``).
    ``rows``: the first ``ROWS_SHOWN`` list rows over it, with their text's characters and
    parts (a template's filled text differs per row; a fixed text is the same for all).
    """

    provider: str
    language: str
    unit: str  # "characters" or "parts"
    limit: int
    hard: bool
    templated: bool
    advice: str = ""
    fallback: bool = False
    recipients: int = 0
    characters: int = 0  # the longest text over it
    parts: int = 0  # the most parts of a text over it
    rows: list[tuple[int, int, int]] = field(default_factory=list)

    def add(self, row: int, characters: int, parts: int) -> None:
        self.recipients += 1
        self.characters = max(self.characters, characters)
        self.parts = max(self.parts, parts)
        if self.templated and len(self.rows) < ROWS_SHOWN:
            self.rows.append((row, characters, parts))

    def describe(self) -> str:
        """One sentence: the text, its size, the provider and its limit, and the rows."""
        takes = "takes" if self.hard else "advises"
        limit = f"at most {figure(self.limit)} {self.unit} per message"
        text = f"messages.{self.language}"
        if self.templated:
            rows = ", ".join(
                f"row {row} ({figure(chars)} characters, {figure(parts)} parts)"
                for row, chars, parts in self.rows
            )
            more = self.recipients - len(self.rows)
            rows += f" and {figure(more)} more" if more > 0 else ""
            whose = (
                f"fallback provider {self.provider!r} (routing.fallback)"
                if self.fallback
                else f"provider {self.provider!r}"
            )
            said = (
                f"{text} filled in is over what {whose} {takes} ({limit}) "
                f"on {_count(self.recipients, 'row')}: {rows}"
            )
        else:
            whom = "whose fallback is provider" if self.fallback else "routed to provider"
            said = (
                f"{text} is {figure(self.characters)} characters ({figure(self.parts)} parts) "
                f"for {_count(self.recipients, 'recipient')} {whom} {self.provider!r}"
                f"{' (routing.fallback)' if self.fallback else ''}, which {takes} {limit}"
            )
        return f"{said}: {self.advice}" if self.advice and not self.hard else said

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "language": self.language,
            "limit": f"{'max' if self.hard else 'advised'}_{self.unit}",
            "limit_value": self.limit,
            "fallback": self.fallback,
            "recipients": self.recipients,
            "characters": self.characters,
            "parts": self.parts,
            "rows": [row for row, _, _ in self.rows],
            "message": self.describe(),
        }


#: Records of texts beyond a limit, by (provider, language, unit, hard, fallback).
ExcessKey = tuple[str, str, str, bool, bool]


class Holding:
    """A plan's messages held against the limits of every provider each may be sent
    through: its route's, and each fallback that may take it over. What goes beyond a
    limit is noted in ``excess``, one ``Excess`` per (provider, language, unit, hard,
    fallback): the hard and the advised limit on a unit each keep a record of their own,
    so whichever row comes first decides nothing for the other.

    Parameters:
        limits: per provider instance, what it takes in one message (missing: no limit).
        fallbacks: for a message routed to a provider (first argument) in a country (an
            ISO code), the fallback providers that may take it over.
        excess: where the records go (the plan summary's).
    """

    def __init__(
        self,
        limits: Mapping[str, Limits],
        fallbacks: Callable[[str, str], Iterable[str]],
        excess: dict[ExcessKey, Excess],
    ) -> None:
        # Only those that limit a text are looked at per row.
        self.limits = {name: limit for name, limit in limits.items() if limit.on_text}
        self.excess = excess
        self._fallbacks = fallbacks
        self._against: dict[tuple[str, str], tuple[tuple[str, Limits, bool], ...]] = {}

    def against(self, provider: str, country: str) -> tuple[tuple[str, Limits, bool], ...]:
        """The limits a message routed to ``provider`` in ``country`` is held against, each
        as ``(provider instance, its limits, whether it is a fallback)``. Cached: a list has
        a few dozen (provider, country) pairs and a million rows."""
        found = self._against.get((provider, country))
        if found is None:
            limited = self.limits
            held = [(provider, limited[provider], False)] if provider in limited else []
            held += [
                (name, limited[name], True)
                for name in self._fallbacks(provider, country)
                if name in limited and name != provider
            ]
            found = self._against[(provider, country)] = tuple(held)
        return found

    def hold(
        self,
        provider: str,
        country: str,
        language: str,
        row: int,
        characters: int,
        parts: int,
        templated: bool,
    ) -> None:
        """Hold one message (list ``row``, its text of ``characters`` and ``parts``)
        routed to ``provider`` in ``country`` against every limit it may meet."""
        excess = self.excess
        for name, limits, fallback in self.against(provider, country):
            for unit, limit, hard in limits.exceeded(characters, parts):
                key = (name, language, unit, hard, fallback)
                found = excess.get(key)
                if found is None:
                    advice = "" if hard else limits.advice
                    found = excess[key] = Excess(
                        name, language, unit, limit, hard, templated, advice, fallback
                    )
                found.add(row, characters, parts)
