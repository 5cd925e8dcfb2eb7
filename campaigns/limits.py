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
parts as the carrier bills them (``campaigns.text.segments``), behind the header each
part of a long message carries with that provider (``Limits.part_header``): a provider
with a bigger header than its route's is held against the parts the text would be there.
A GSM-7 text holding a character a provider cannot carry in the coding it is set to
(``Limits.uncarried``) would fail at every send through it: the plan stops, naming the
provider, the characters and, for a template, the rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from campaigns.text import GSM_BASIC, GSM_EXTENSION, MAX_PART_HEADER, PART_HEADER, Encoding
from campaigns.text import segments as _segments

#: Rows named in a message about one limit (the count covers them all).
ROWS_SHOWN = 5
#: Every character a GSM-7 text may hold.
_GSM = GSM_BASIC | GSM_EXTENSION


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
        part_header: octets of user data header in each part of a long message it sends,
            which the parts' capacity and so their count depend on
            (``campaigns.text.capacity``): 6 with an 8-bit concatenation reference
            (``05 00 03 REF TOTAL SEQ``, 3GPP TS 23.040 9.2.3.24.1; 153 GSM-7 septets or
            67 UCS-2 units a part), 7 with a 16-bit one (``06 08 04 REFhi REFlo TOTAL
            SEQ``, 9.2.3.24.8; 152 or 66), as a carrier's SMSC may be set to take them
            (../shared/reference/providers.md, long messages). Planned and billed parts
            of a message routed to it are counted so.
        uncarried: the characters of a GSM-7 text it cannot carry in the coding it sends
            such texts in, e.g. an SMSC reading them as Latin-1 (data_coding 0x03: no
            Greek capitals, no ``€``) or IA5/ASCII (0x01: nothing beyond ASCII), as
            ../shared/reference/providers.md says some do; a UCS-2 text is always
            carried. A text holding one stops the plan.

    Raises:
        ValueError: a ``part_header`` outside 6..``MAX_PART_HEADER``, or ``uncarried``
            holding something other than single GSM 03.38 characters (no other can be in
            a GSM-7 text).
    """

    max_characters: int | None = None
    max_parts: int | None = None
    max_sender: int | None = None
    advised_characters: int | None = None
    advised_parts: int | None = None
    advice: str = ""
    part_header: int = PART_HEADER
    uncarried: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not PART_HEADER <= self.part_header <= MAX_PART_HEADER:
            raise ValueError(
                f"part_header: a part's user data header is {PART_HEADER} to "
                f"{MAX_PART_HEADER} octets, not {self.part_header}"
            )
        stray = sorted(ch for ch in self.uncarried if ch not in _GSM)
        if stray:
            raise ValueError(f"uncarried: not GSM 03.38 characters: {stray}")

    @property
    def on_text(self) -> bool:
        """Whether any limit applies to a message's text (else nothing to check per row)."""
        return bool(self.uncarried) or any(
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


def _shown(characters: Iterable[str]) -> str:
    """``'€', 'Σ'``: quoted, so a form feed shows as ``'\\x0c'``, not as a break."""
    return ", ".join(repr(ch) for ch in characters)


@dataclass
class Uncarried:
    """Texts holding characters one provider instance cannot carry (``Limits.uncarried``),
    in one language. ``characters``: those found, distinct, in order of appearance (a
    template's rows in list order); ``rows``: for a template, the first ``ROWS_SHOWN``
    rows holding one, with theirs; ``fallback`` as in ``Excess``."""

    provider: str
    language: str
    templated: bool
    fallback: bool = False
    recipients: int = 0
    characters: dict[str, None] = field(default_factory=dict)  # an ordered set
    rows: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)

    def add(self, row: int, found: list[str]) -> None:
        """One recipient's text, holding ``found`` (each occurrence, in order)."""
        self.recipients += 1
        distinct = tuple(dict.fromkeys(found))
        self.characters.update(dict.fromkeys(distinct))
        if self.templated and len(self.rows) < ROWS_SHOWN:
            self.rows.append((row, distinct))

    def describe(self) -> str:
        """One sentence: the text, the characters, the provider and, for a template, the
        rows."""
        text, them = f"messages.{self.language}", _shown(self.characters)
        coding = "in the coding it sends GSM texts in"
        if self.templated:
            whose = (
                f"fallback provider {self.provider!r} (routing.fallback)"
                if self.fallback
                else f"provider {self.provider!r}"
            )
            rows = ", ".join(f"row {row} ({_shown(found)})" for row, found in self.rows)
            more = self.recipients - len(self.rows)
            rows += f" and {figure(more)} more" if more > 0 else ""
            return (
                f"{text} filled in holds characters {whose} cannot carry {coding} ({them}) "
                f"on {_count(self.recipients, 'row')}: {rows}"
            )
        whom = "whose fallback is provider" if self.fallback else "routed to provider"
        it = "it" if len(self.characters) == 1 else "them"
        return (
            f"{text} holds {them} for {_count(self.recipients, 'recipient')} {whom} "
            f"{self.provider!r}{' (routing.fallback)' if self.fallback else ''}, which cannot "
            f"carry {it} {coding}"
        )


#: Records of texts beyond a limit, by (provider, language, unit, hard, fallback).
ExcessKey = tuple[str, str, str, bool, bool]
#: Records of texts a provider cannot carry, by (provider, language, fallback).
UncarriedKey = tuple[str, str, bool]
#: A provider a message may meet: (instance, its limits, whether a fallback, its part
#: header when it differs from the route's, else None, a pattern of what it cannot
#: carry, or None).
Held = tuple[str, Limits, bool, int | None, re.Pattern[str] | None]


class Holding:
    """A plan's messages held against the limits of every provider each may be sent
    through: its route's, and each fallback that may take it over. What goes beyond a
    limit is noted in ``excess``, one ``Excess`` per (provider, language, unit, hard,
    fallback): the hard and the advised limit on a unit each keep a record of their own,
    so whichever row comes first decides nothing for the other. A GSM-7 text holding a
    character a provider cannot carry is noted in ``uncarried``, one ``Uncarried`` per
    (provider, language, fallback). A provider whose parts carry another header than
    the route's (``Limits.part_header``) is held against the parts the text makes there.

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
        self.uncarried: dict[UncarriedKey, Uncarried] = {}
        # Every provider's header, the route's included when it limits nothing: a
        # message's planned parts are counted behind it.
        self._headers = {name: limit.part_header for name, limit in limits.items()}
        self._patterns = {
            name: re.compile("[" + re.escape("".join(sorted(limit.uncarried))) + "]")
            for name, limit in self.limits.items()
            if limit.uncarried
        }
        self._fallbacks = fallbacks
        self._against: dict[tuple[str, str], tuple[Held, ...]] = {}
        # A fixed text's parts behind another header, by (text, header): counted once.
        self._fixed_parts: dict[tuple[str, int], int] = {}

    def against(self, provider: str, country: str) -> tuple[Held, ...]:
        """The limits a message routed to ``provider`` in ``country`` is held against
        (``Held``). Cached: a list has a few dozen (provider, country) pairs and a million
        rows."""
        found = self._against.get((provider, country))
        if found is None:
            limited, headers = self.limits, self._headers
            own = headers.get(provider, PART_HEADER)
            names = [(provider, False)] + [
                (name, True) for name in self._fallbacks(provider, country) if name != provider
            ]
            found = self._against[(provider, country)] = tuple(
                (
                    name,
                    limited[name],
                    fallback,
                    None if limited[name].part_header == own else limited[name].part_header,
                    self._patterns.get(name),
                )
                for name, fallback in names
                if name in limited
            )
        return found

    def hold(
        self,
        provider: str,
        country: str,
        language: str,
        row: int,
        text: str,
        encoding: str,
        characters: int,
        parts: int,
        templated: bool,
    ) -> None:
        """Hold one message (list ``row``, its NFC ``text`` in ``encoding``, an
        ``Encoding`` value, of ``characters`` and ``parts`` as its route's provider sends
        it) routed to ``provider`` in ``country`` against every limit it may meet."""
        excess = self.excess
        for name, limits, fallback, header, pattern in self.against(provider, country):
            counted = parts
            if header is not None and parts > 1:  # one part has no header: the same
                counted = self._parts(text, header, templated)
            for unit, limit, hard in limits.exceeded(characters, counted):
                key = (name, language, unit, hard, fallback)
                found = excess.get(key)
                if found is None:
                    advice = "" if hard else limits.advice
                    found = excess[key] = Excess(
                        name, language, unit, limit, hard, templated, advice, fallback
                    )
                found.add(row, characters, counted)
            if pattern is not None and encoding == Encoding.GSM7:
                lacking = pattern.findall(text)
                if lacking:
                    where = (name, language, fallback)
                    record = self.uncarried.get(where)
                    if record is None:
                        record = self.uncarried[where] = Uncarried(
                            name, language, templated, fallback
                        )
                    record.add(row, lacking)

    def refusal(self) -> str | None:
        """What stops the plan, if anything: every text over a hard limit (``excess``)
        and every one holding characters a provider cannot carry (``uncarried``), each
        named, with what the operator can do; ``None`` when there is none."""
        refused = [found for _, found in sorted(self.excess.items()) if found.hard]
        lacking = [found for _, found in sorted(self.uncarried.items())]
        said = []
        if refused:
            said.append(
                "; ".join(found.describe() for found in refused)
                + f". Every send of such a text would be refused: shorten it{_instead(refused)}"
            )
        if lacking:
            one = len(lacking) == 1 and len(lacking[0].characters) == 1
            what = "that character" if one else "those characters"
            said.append(
                "; ".join(found.describe() for found in lacking)
                + f". Every send of such a text would fail: write {what} otherwise"
                + _instead(lacking)
            )
        return ". ".join(said) if said else None

    def _parts(self, text: str, header: int, templated: bool) -> int:
        """Parts of ``text`` behind a ``header``-octet header; a fixed text's once."""
        if templated:  # a text of its own on each row: nothing to keep
            return _segments(text, header).parts
        key = (text, header)
        parts = self._fixed_parts.get(key)
        if parts is None:
            parts = self._fixed_parts[key] = _segments(text, header).parts
        return parts


def _instead(found: list[Excess] | list[Uncarried]) -> str:
    """What else the operator can do about texts a provider cannot send."""
    if any(one.fallback for one in found):
        return (
            ", route these numbers to another provider, or take that provider out of "
            "routing.fallback"
        )
    return ", or route these numbers to another provider"
