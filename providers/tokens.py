"""Credentials a provider is issued for a while, and where every process keeps them.

A Zalo Official Account's access token lives about a day, and the refresh token that gets
the next one can be used once (../shared/reference/zalo-and-smpp.md): two worker processes
refreshing at the same moment would each spend it, and one would then hold a pair Zalo no
longer knows. So the pair lives in one place every process and machine reads (the ledger:
``ledger.channels.tokens``, given to providers by ``worker.sending.tokens``), and a refresh happens under a lock held across all of them, the new
pair stored before anyone uses it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Tokens:
    """An access token, the refresh token that renews it, and when the access token
    ends (``None``: not said). ``repr`` shows neither token."""

    access: str
    refresh: str
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"Tokens(expires_at={self.expires_at!r})"

    @property
    def seed(self) -> str:
        """What identifies the pair a person configured (sha256 of its refresh token, hex):
        a store meets a new one when an operator puts fresh tokens in the settings."""
        return hashlib.sha256(self.refresh.encode()).hexdigest()


#: Renews a pair: called with the pair stored now; returns the new one (or raises).
Renew = Callable[[Tokens], Awaitable[Tokens]]


class TokenStore(Protocol):
    """Where a provider instance's current tokens are kept (the worker gives the ledger's,
    ``ledger.tokens.LedgerTokens``; alone, a provider keeps them in memory)."""

    async def current(self, seed: Tokens) -> Tokens:
        """The pair in use: the stored one, or ``seed`` (the settings' pair) when none is
        stored or the settings hold a different pair than the one stored began from."""
        ...

    async def renew(self, seed: Tokens, stale: Tokens, renew: Renew) -> Tokens:
        """A fresh pair, renewed at most once for all processes: under the store's lock,
        if the stored pair is no longer ``stale`` (another process renewed it meanwhile),
        that one; else ``renew(stored)``'s, stored before it is returned.

        Raises:
            whatever ``renew`` raised (nothing stored then).
        """
        ...


class MemoryTokens:
    """A store for one process (a provider used alone: ``loa provider test``, a test)."""

    def __init__(self) -> None:
        self._pair: Tokens | None = None
        self._seed: str | None = None
        self._refused = False
        self._lock = asyncio.Lock()

    async def current(self, seed: Tokens) -> Tokens:
        if self._pair is None or (self._seed != seed.seed and self._refused):
            self._pair, self._seed, self._refused = seed, seed.seed, False
        return self._pair

    async def refused(self, refresh: str) -> None:
        if self._pair is not None and self._pair.refresh == refresh:
            self._refused = True

    async def renew(self, seed: Tokens, stale: Tokens, renew: Renew) -> Tokens:
        async with self._lock:
            stored = await self.current(seed)
            if stored.access != stale.access:
                return stored
            self._pair, self._refused = await renew(stored), False
            return self._pair
