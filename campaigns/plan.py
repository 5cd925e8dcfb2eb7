"""Planning: from list rows to the messages a campaign will send, and why others won't.

Every row read ends up in exactly one of: a planned message, a rejection (a reason from
``campaigns.phones.Reject`` or ``missing_field``), a duplicate of an earlier row, or a
suppression (``opt_out``, ``dnc``, ``frequency_cap``). Each planned message carries its
route, the provider instance that will send it (``campaigns.routing``); a number no route
can reach is rejected as ``no_route``. ``PlanSummary`` keeps the counts,
so ``rows_read == planned + rejected + duplicates + suppressed`` always holds.

Given each provider's limits (``campaigns.limits``), every message is held against those
of each provider it may be sent through: the one its route names, and every fallback that
reaches its number (a halt hands it over). Each limit is judged on its own, the hard one
apart from the advised one. A text one of them would refuse stops the plan once
every row is read (``PlanError``, naming the provider, the limit, the size and, for a
template, the rows), so a launch records nothing; one it advises against is a warning in
the summary. So does a GSM-7 text holding characters one of them cannot carry in the
coding it is set to (``Limits.uncarried``), naming them.

A message's parts are counted behind the user data header its route's provider puts on
each part of a long message (``Limits.part_header``: 7 octets with a 16-bit reference
leave 152 GSM-7 septets or 66 UCS-2 units a part, not 153 or 67), so the parts planned,
billed and recorded are those the provider sends.

This is the hot path of a nationwide launch (a million rows): no per-row objects beyond
two small tuples, no libphonenumber for Vietnamese numbers, segments computed once per
template when it has no fields, and a de-duplication set whose memory does not grow. A
provider with another part header costs only the rows routed to it whose text is long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from campaigns.limits import Excess, ExcessKey, Holding, Limits
from campaigns.numbers import NumberSet
from campaigns.phones import PhoneRejected, normalise
from campaigns.recipients import ListRow, fold
from campaigns.routing import NO_ROUTE, Router
from campaigns.spec import CampaignSpec, Prices
from campaigns.text import PART_HEADER, segments

DUPLICATE = "duplicate"
MISSING_FIELD = "missing_field"
FREQUENCY_CAP = "frequency_cap"

#: Folded header names understood for common template fields, when [columns] is silent.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "fullname", "hoten", "hovaten", "ten", "tenkhachhang", "khachhang"),
    "district": (
        "district",
        "huyen",
        "quanhuyen",
        "huyenthanhpho",
        "quan",
        "huyenthixa",
        "huyenthixathanhpho",
        "quanhuyenthixa",
        "quanhuyenthanhpho",
        "khuvuc",
        "diaban",
    ),
    "ward": ("ward", "xa", "phuong", "xaphuong", "phuongxa"),
    "language": ("language", "lang", "ngonngu"),
}


class PlanError(ValueError):
    """The campaign and the list do not fit together (a template field with no column)."""


class PlannedMessage(NamedTuple):
    """One recipient to text. Flat on purpose: a million of these cross a process
    boundary in a nationwide launch, and consumers unpack them as plain tuples."""

    row: int
    e164: str
    country: str
    carrier: str | None  # the allocation carrier, or the ported-number override
    provider: str  # the provider instance its route names
    language: str
    encoding: str  # an ``Encoding`` value
    parts: int
    values: tuple[str, ...]  # the list's other columns, kept for templates and reports


class RejectedRow(NamedTuple):
    row: int
    reason: str
    raw: str  # the cell as read: for the operator's rejects file, never for the ledger


@dataclass
class Line:
    """Recipients and parts of one (provider, carrier, encoding) group."""

    recipients: int = 0
    parts: int = 0


@dataclass
class PlanSummary:
    rows_read: int = 0
    planned: int = 0
    duplicates: int = 0
    legacy_converted: int = 0
    parts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    lines: dict[tuple[str, str, str], Line] = field(default_factory=dict)
    khong_dau: list[str] = field(default_factory=list)
    prices: Prices | None = None
    routes: list[dict[str, str]] = field(default_factory=list)
    #: Texts beyond a provider's limit, by (provider, language, unit, hard, fallback).
    excess: dict[ExcessKey, Excess] = field(default_factory=dict)

    @property
    def limit_warnings(self) -> list[Excess]:
        """Texts beyond what their provider advises (it still sends them)."""
        return [found for _, found in sorted(self.excess.items()) if not found.hard]

    def line_cost(self, carrier: str, parts: int) -> float | None:
        price = self.prices.per_part(carrier) if self.prices else None
        return None if price is None else float(round(price * parts, 2))  # money: a float

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())

    @property
    def cost(self) -> float | None:
        costs = [
            self.line_cost(carrier, line.parts) for (_, carrier, _), line in self.lines.items()
        ]
        if any(c is None for c in costs):
            return None
        return float(round(sum(c or 0 for c in costs), 2))

    def per_provider(self) -> dict[str, dict[str, int]]:
        """Recipients and parts routed to each provider."""
        totals: dict[str, dict[str, int]] = {}
        for (provider, _, _), line in sorted(self.lines.items()):
            total = totals.setdefault(provider, {"recipients": 0, "parts": 0})
            total["recipients"] += line.recipients
            total["parts"] += line.parts
        return totals

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "planned": self.planned,
            "duplicates": self.duplicates,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "suppressed": self.suppressed_total,
            "suppressed_by_list": dict(sorted(self.suppressed.items())),
            "legacy_converted": self.legacy_converted,
            "parts": self.parts,
            "cost": self.cost,
            "currency": self.prices.currency if self.prices else None,
            "khong_dau": self.khong_dau,
            "routing": self.routes,
            "providers": self.per_provider(),
            "limit_warnings": [found.as_dict() for found in self.limit_warnings],
            "by_provider": [
                {
                    "provider": provider,
                    "carrier": carrier,
                    "encoding": encoding,
                    "recipients": line.recipients,
                    "parts": line.parts,
                    "cost": self.line_cost(carrier, line.parts),
                }
                for (provider, carrier, encoding), line in sorted(self.lines.items())
            ],
        }


def column_for(field_name: str, columns: list[str], mapping: Mapping[str, str]) -> int | None:
    """Index in ``columns`` of a template field: by the campaign's [columns] mapping, by
    the field's own name, or by a known alias (all compared folded)."""
    folded = [fold(c) for c in columns]
    wanted = [fold(mapping[field_name])] if field_name in mapping else []
    wanted += [fold(field_name), *FIELD_ALIASES.get(field_name, ())]
    for name in wanted:
        if name in folded:
            return folded.index(name)
    return None


class Planner:
    """Turns rows into planned messages, rejections and suppressions, counting as it goes.

    Parameters:
        spec: the campaign.
        columns: the list's columns other than the phone (``RecipientList.columns``).
        suppressed: suppression lists by name (``opt_out``, ``dnc``); only those the
            campaign checks are used.
        capped: numbers that reached the advertising cap in the last 24 hours.
        carriers: ported numbers: E.164 -> the carrier that serves them now.
        router: the campaign's routes, knowing what each provider reaches (default:
            ``spec.router()``, which assumes every provider reaches every country).
        limits: per provider instance the routes name, what it takes in one message
            (missing: no limit); each message is held against its route's and those of
            the fallbacks that reach its number, and its parts are counted behind its
            route's ``part_header``.

    Raises:
        PlanError: a template field, or the goal's area column, matches no column of the
            list; the brandname is longer than a provider takes.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        columns: Iterable[str] = (),
        *,
        suppressed: Mapping[str, NumberSet] | None = None,
        capped: NumberSet | None = None,
        carriers: Mapping[str, str] | None = None,
        router: Router | None = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        self.spec = spec
        self.columns = list(columns)
        self.router = router or spec.router()
        self.summary = PlanSummary(prices=spec.prices, routes=self.router.rules())
        self.summary.khong_dau = [lang for lang, m in spec.messages.items() if m.strip_diacritics]
        self._seen = NumberSet()
        # Empty lists are left out: checking them costs on every row and finds nothing.
        self._lists = [
            (n, s) for n, s in (suppressed or {}).items() if n in spec.suppression_lists and len(s)
        ]
        self._capped = capped if capped is not None and len(capped) else None
        self._carriers = carriers or {}
        self._language = column_for("language", self.columns, spec.columns)
        self._fields: dict[str, tuple[int, ...]] = {}
        for lang in spec.messages:
            indexes = []
            for name in spec.template(lang).fields:
                index = column_for(name, self.columns, spec.columns)
                if index is None:
                    have = ", ".join(self.columns) or "no other columns"
                    raise PlanError(
                        f"messages.{lang} uses {{{name}}} but the list has no such column "
                        f"({have}); map it in the campaign's [columns] table"
                    )
                indexes.append(index)
            self._fields[lang] = tuple(indexes)
        for channel in spec.channel_list:  # a template channel's parameters, the same way
            for param, template in getattr(channel, "compiled", {}).items():
                for name in template.fields:
                    if column_for(name, self.columns, spec.columns) is None:
                        have = ", ".join(self.columns) or "no other columns"
                        raise PlanError(
                            f"channels.{channel.name}.params.{param} uses {{{name}}} but the "
                            f"list has no such column ({have}); map it in the campaign's "
                            "[columns] table"
                        )
        goal = spec.goal
        if goal is not None and column_for(goal.area_column, self.columns, spec.columns) is None:
            # Every recipient would count outside the goal's areas: a report of nothing.
            have = ", ".join(self.columns) or "no other columns"
            raise PlanError(
                f"goal.area_column: the goal's areas are read from the column "
                f"{goal.area_column!r}, which the list does not have ({have}); name the "
                "list's district column in the goal (area_column) or map it in [columns]"
            )
        for name, limit in sorted((limits or {}).items()):
            if limit.max_sender is not None and len(spec.brandname) > limit.max_sender:
                raise PlanError(
                    f"brandname {spec.brandname!r} is {len(spec.brandname)} characters: "
                    f"provider {name!r} takes a sender of at most {limit.max_sender}"
                )
        self._holding = Holding(limits or {}, self._fallbacks, self.summary.excess)
        #: Providers whose parts carry another header than the usual one: only messages
        #: routed to these are counted again.
        self._headers = {
            name: limit.part_header
            for name, limit in (limits or {}).items()
            if limit.part_header != PART_HEADER
        }

    def plan(self, rows: Iterable[ListRow]) -> Iterator[PlannedMessage | RejectedRow]:
        """Yield one decision per row, in list order. The summary is complete once the
        rows are consumed (counters are kept in locals on this hot path, folded in at
        the end, and also when the consumer stops early).

        Raises:
            PlanError: once every row is read, when a text is over what its route's
                provider, or a fallback that may take it over, takes (``limits``), or
                holds characters it cannot carry.
        """
        spec, add = self.spec, self._seen.add
        language_index, checks, carriers = (
            self._language,
            bool(self._lists or self._capped),
            self._carriers,
        )
        templates = {}
        headers = self._headers
        # A fixed text's parts behind each other header, by (language, header).
        recount: dict[tuple[str, int], int] = {}
        for lang in spec.messages:
            template = spec.template(lang)
            fixed = template.fixed
            templates[lang] = (
                template,
                self._fields[lang],
                fixed.parts if fixed else 0,
                fixed.encoding.value if fixed else "",
                len(template.text) if fixed else 0,
                template.text if fixed else "",
            )
            if fixed:
                for header in set(headers.values()):
                    recount[lang, header] = segments(template.text, header).parts
        default = spec.default_language
        route = self.router.route
        hold = self._holding.hold if self._holding.limits else None
        rejected, suppressed = self.summary.rejected, self.summary.suppressed
        # (provider, carrier or country, encoding, parts)
        groups: Counter[tuple[str, str, str, int]] = Counter()
        read = duplicates = legacy = 0
        try:
            for row, raw, values, problem in rows:
                read += 1
                if problem:  # unusable as read (a filled cell beyond the header)
                    rejected[problem] += 1
                    yield RejectedRow(row, problem, raw)
                    continue
                try:
                    phone = normalise(raw)
                except PhoneRejected as refused:
                    rejected[refused.reason.value] += 1
                    yield RejectedRow(row, refused.reason.value, raw)
                    continue
                number, country, carrier, was_legacy = phone
                if not add(number):
                    duplicates += 1
                    yield RejectedRow(row, DUPLICATE, raw)
                    continue
                if checks:
                    reason = self._suppression(number)
                    if reason is not None:
                        suppressed[reason] += 1
                        yield RejectedRow(row, reason, raw)
                        continue
                language = default
                if language_index is not None and values[language_index] in templates:
                    language = values[language_index]
                template, fields, parts, encoding, characters, text = templates[language]
                if carriers:
                    carrier = carriers.get(number, carrier)
                # Routed first: the parts depend on the header its provider puts on each.
                provider = route(country, carrier)
                if fields:
                    picked = tuple(values[i] for i in fields)
                    if not all(v.strip() for v in picked):
                        rejected[MISSING_FIELD] += 1
                        yield RejectedRow(row, MISSING_FIELD, raw)
                        continue
                    text = template.render(picked)
                    header = headers.get(provider, PART_HEADER) if headers else PART_HEADER
                    shape = segments(text, header)
                    parts, encoding = shape.parts, shape.encoding.value
                    characters = len(text)
                elif headers and parts > 1 and provider in headers:  # one part has no header
                    parts = recount[language, headers[provider]]
                if provider is None:
                    rejected[NO_ROUTE] += 1
                    yield RejectedRow(row, NO_ROUTE, raw)
                    continue
                if hold is not None:
                    hold(
                        provider,
                        country,
                        language,
                        row,
                        text,
                        encoding,
                        characters,
                        parts,
                        bool(fields),
                    )
                if was_legacy:
                    legacy += 1
                groups[(provider, carrier or country, encoding, parts)] += 1
                yield PlannedMessage(
                    row, number, country, carrier, provider, language, encoding, parts, values
                )
        finally:
            self._fold(read, duplicates, legacy, groups)
        refusal = self._holding.refusal()
        if refusal is not None:
            raise PlanError(refusal)

    def _fallbacks(self, provider: str, country: str) -> list[str]:
        """The fallbacks a halt of ``provider`` may hand a number of ``country`` to."""
        router = self.router
        return [f for f in router.fallback_for(provider, set()) if router.reaches(f, country)]

    def _fold(
        self,
        read: int,
        duplicates: int,
        legacy: int,
        groups: Counter[tuple[str, str, str, int]],
    ) -> None:
        summary = self.summary
        summary.rows_read += read
        summary.duplicates += duplicates
        summary.legacy_converted += legacy
        for (provider, carrier, encoding, parts), count in groups.items():
            line = summary.lines.setdefault((provider, carrier, encoding), Line())
            line.recipients += count
            line.parts += parts * count
            summary.planned += count
            summary.parts += parts * count

    def _suppression(self, number: str) -> str | None:
        for name, numbers in self._lists:
            if number in numbers:
                return name
        if self._capped is not None and number in self._capped:
            return FREQUENCY_CAP
        return None
