"""Planning: from list rows to the messages a campaign will send, and why others won't.

Every row read ends up in exactly one of: a planned message, a rejection (with a reason
code from ``campaigns.phones.Reject``) or a duplicate of an earlier row. ``PlanSummary``
keeps the counts, so ``rows_read == planned + rejected + duplicates`` always holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from campaigns.phones import Phone, PhoneRejected, normalise
from campaigns.recipients import ListRow
from campaigns.spec import CampaignSpec
from campaigns.text import Encoding, Segments, segments

#: Reason code of a row whose number already appeared earlier in the list.
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    row: int
    phone: Phone
    language: str
    encoding: Encoding
    parts: int


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int
    reason: str


@dataclass
class PlanSummary:
    rows_read: int = 0
    planned: int = 0
    duplicates: int = 0
    legacy_converted: int = 0
    parts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_carrier: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "planned": self.planned,
            "duplicates": self.duplicates,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "legacy_converted": self.legacy_converted,
            "parts": self.parts,
            "by_carrier": dict(sorted(self.by_carrier.items())),
        }


class Planner:
    """Turns rows into planned messages and rejections, counting as it goes.

    Parameters:
        spec: the campaign.
    """

    def __init__(self, spec: CampaignSpec) -> None:
        self.spec = spec
        self.summary = PlanSummary()
        self._seen: set[str] = set()
        self._texts: dict[str, Segments] = {
            lang: segments(text) for lang, text in spec.messages.items()
        }

    def plan(self, rows: Iterable[ListRow]) -> Iterator[PlannedMessage | RejectedRow]:
        """Yield one decision per row, in list order."""
        summary = self.summary
        for row in rows:
            summary.rows_read += 1
            try:
                phone = normalise(row.phone)
            except PhoneRejected as rejected:
                summary.rejected[rejected.reason.value] += 1
                yield RejectedRow(row.row, rejected.reason.value)
                continue
            if phone.e164 in self._seen:
                summary.duplicates += 1
                yield RejectedRow(row.row, DUPLICATE)
                continue
            self._seen.add(phone.e164)
            language, _ = self.spec.text_for(row.fields.get("language"))
            text = self._texts[language]
            summary.planned += 1
            summary.parts += text.parts
            summary.legacy_converted += phone.legacy
            summary.by_carrier[phone.carrier or phone.country] += 1
            yield PlannedMessage(row.row, phone, language, text.encoding, text.parts)
