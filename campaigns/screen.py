"""Checking a list on its own, before any campaign: which rows hold a textable number,
which are duplicates, which are rejected and why (``loa recipients check``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from campaigns.numbers import NumberSet
from campaigns.phones import Phone, PhoneRejected, normalise
from campaigns.plan import DUPLICATE
from campaigns.recipients import ListRow


@dataclass
class ScreenSummary:
    rows_read: int = 0
    valid: int = 0
    duplicates: int = 0
    legacy_converted: int = 0
    #: Numbers a ported-number list moved to another carrier than their prefix's.
    ported: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    by_carrier: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "valid": self.valid,
            "duplicates": self.duplicates,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "legacy_converted": self.legacy_converted,
            "ported": self.ported,
            "by_carrier": dict(sorted(self.by_carrier.items())),
        }


def screen(
    rows: Iterable[ListRow], summary: ScreenSummary, carriers: Mapping[str, str] | None = None
) -> Iterator[tuple[ListRow, Phone | None, str | None]]:
    """Yield each row with its normalised number, or ``None`` and the reason it is unusable.
    ``carriers`` (ported numbers: E.164 -> the carrier serving them now) overrides the
    carrier of the allocation prefix in ``summary.by_carrier``."""
    seen = NumberSet()
    for row in rows:
        summary.rows_read += 1
        if row.problem:  # unusable as read (a filled cell beyond the header)
            summary.rejected[row.problem] += 1
            yield row, None, row.problem
            continue
        try:
            phone = normalise(row.phone)
        except PhoneRejected as rejected:
            summary.rejected[rejected.reason.value] += 1
            yield row, None, rejected.reason.value
            continue
        if not seen.add(phone.e164):
            summary.duplicates += 1
            yield row, None, DUPLICATE
            continue
        summary.valid += 1
        summary.legacy_converted += phone.legacy
        carrier = phone.carrier
        if carriers and phone.e164 in carriers:
            summary.ported += carriers[phone.e164] != carrier
            carrier = carriers[phone.e164]
        summary.by_carrier[carrier or phone.country] += 1
        yield row, phone, None
