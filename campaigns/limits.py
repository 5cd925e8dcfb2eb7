"""What a provider takes in one message, and a plan's texts held against it.

Each provider module states its type's limits once (``providers.base.Provider.limits``,
each figure with its source); planning asks the provider instances a campaign's routes
name for theirs (``worker.campaign.planning``), so nothing here knows a provider by name. A text
over a hard limit would be refused at every send: the plan stops before launch, naming
the provider instance, the limit and the text's size, and for a template the rows whose
filled text is over. Over an advised limit the provider still sends it (split, shown in
pieces, delivered less surely): the plan warns.

Characters are counted as Unicode code points of the NFC text (what the recipient sees);
parts as the carrier bills them (``campaigns.text.segments``).
"""

from __future__ import annotations

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
            said = (
                f"{text} filled in is over what provider {self.provider!r} {takes} ({limit}) "
                f"on {_count(self.recipients, 'row')}: {rows}"
            )
        else:
            said = (
                f"{text} is {figure(self.characters)} characters ({figure(self.parts)} parts) "
                f"for {_count(self.recipients, 'recipient')} routed to provider "
                f"{self.provider!r}, which {takes} {limit}"
            )
        return f"{said}: {self.advice}" if self.advice and not self.hard else said

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "language": self.language,
            "limit": f"{'max' if self.hard else 'advised'}_{self.unit}",
            "limit_value": self.limit,
            "recipients": self.recipients,
            "characters": self.characters,
            "parts": self.parts,
            "rows": [row for row, _, _ in self.rows],
            "message": self.describe(),
        }
