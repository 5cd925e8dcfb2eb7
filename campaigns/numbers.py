"""A set of phone numbers whose memory does not grow with a nationwide list.

Vietnamese mobile numbers are nine digits after ``+84``; the first two pick one of a few
dozen allocated ranges and the other seven are dense in it. So each range gets a bitmap of
10^7 bits (1.25 MB), made the first time a number of that range is added: a million
numbers, or forty million, cost the same ~60 MB at most, where a Python set of a million
strings costs ~70 MB and keeps growing. Numbers of other countries (tourists) are few and
go in an ordinary set.

Used for de-duplicating lists and for suppression lists (Do-Not-Call, opt-out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_RANGE = 10_000_000  # numbers per two-digit range: seven free digits
_NONZERO = re.compile(rb"[^\x00]")


class NumberSet:
    """A set of E.164 numbers; ``add`` says whether the number was new."""

    __slots__ = ("_count", "_other", "_ranges")

    def __init__(self, numbers: Iterable[str] = ()) -> None:
        self._ranges: dict[str, bytearray] = {}
        self._other: set[str] = set()
        self._count = 0
        for number in numbers:
            self.add(number)

    def add(self, e164: str) -> bool:
        """Add ``e164``; returns ``False`` when it was already in the set."""
        if len(e164) == 12 and e164.startswith("+84"):
            bits = self._ranges.get(e164[3:5])
            if bits is None:
                bits = self._ranges[e164[3:5]] = bytearray(_RANGE // 8)
            index = int(e164[5:])
            byte, mask = index >> 3, 1 << (index & 7)
            if bits[byte] & mask:
                return False
            bits[byte] |= mask
        else:
            if e164 in self._other:
                return False
            self._other.add(e164)
        self._count += 1
        return True

    def discard(self, e164: str) -> None:
        if len(e164) == 12 and e164.startswith("+84"):
            bits = self._ranges.get(e164[3:5])
            index = int(e164[5:])
            if bits is not None and bits[index >> 3] & (1 << (index & 7)):
                bits[index >> 3] &= ~(1 << (index & 7)) & 0xFF
                self._count -= 1
        elif e164 in self._other:
            self._other.discard(e164)
            self._count -= 1

    def __contains__(self, e164: object) -> bool:
        if not isinstance(e164, str):
            return False
        if len(e164) == 12 and e164.startswith("+84"):
            bits = self._ranges.get(e164[3:5])
            if bits is None:
                return False
            index = int(e164[5:])
            return bool(bits[index >> 3] & (1 << (index & 7)))
        return e164 in self._other

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for prefix, bits in sorted(self._ranges.items()):
            for found in _NONZERO.finditer(bits):  # skips empty bytes in C
                byte_index, byte = found.start(), bits[found.start()]
                for bit in range(8):  # pragma: no mutate (bit 8 of a byte is never set)
                    if byte & (1 << bit):
                        yield f"+84{prefix}{byte_index * 8 + bit:07d}"
        yield from sorted(self._other)
