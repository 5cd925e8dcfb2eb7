"""The ledger's store of expiring provider credentials, as providers use it
(``providers.tokens.TokenStore`` over ``ledger.channels.tokens``): the ledger's calls run
in a thread, and a renewal's call to the provider runs on the sending loop while that
thread holds the row's lock."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from ledger.channels import tokens as stored
from providers.tokens import Renew, Tokens

#: The longest a renewal may hold the row (seconds): the provider's own deadline is shorter.
RENEW_TIMEOUT = 120.0


def _pair(tokens: Tokens) -> stored.Pair:
    return stored.Pair(tokens.access, tokens.refresh, tokens.expires_at)


def _tokens(pair: stored.Pair) -> Tokens:
    return Tokens(pair.access, pair.refresh, pair.expires_at)


class LedgerTokens:
    """``TokenStore`` for provider instance ``provider``, shared by every process."""

    def __init__(self, engine: Engine, provider: str) -> None:
        self.engine, self.provider = engine, provider

    async def current(self, seed: Tokens) -> Tokens:
        pair = await asyncio.to_thread(stored.current, self.engine, self.provider, _pair(seed))
        return _tokens(pair)

    async def refused(self, refresh: str) -> None:
        await asyncio.to_thread(stored.refused, self.engine, self.provider, refresh)

    async def renew(self, seed: Tokens, stale: Tokens, renew: Renew) -> Tokens:
        loop = asyncio.get_running_loop()

        def renewal(pair: stored.Pair) -> stored.Pair:  # in the thread, the row held
            future = asyncio.run_coroutine_threadsafe(renew(_tokens(pair)), loop)
            return _pair(future.result(RENEW_TIMEOUT))

        pair = await asyncio.to_thread(
            stored.renew, self.engine, self.provider, _pair(seed), stale.access, renewal
        )
        return _tokens(pair)
