"""A provider's expiring credentials in the ledger (``worker.sending.tokens``): renewed once
for every process, however many want a renewal at the same moment, and never overwritten
by the settings' first pair once renewed from it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from providers.tokens import Tokens
from worker.sending.tokens import LedgerTokens

SEED = Tokens("access-0", "refresh-0")


def test_many_processes_wanting_a_renewal_renew_once(engine):
    """Four workers meet the same stale token at once. Each runs in its own thread with
    its own loop, as worker processes would, and they meet only in the ledger: the
    first renews while holding the row; a second renewal starting meanwhile would be a
    second use of a single-use refresh token (the renewal waits a moment for one)."""
    renewals: list[str] = []
    second = threading.Event()
    gate = threading.Barrier(4)
    results: list[Tokens] = []

    async def renew(stored: Tokens) -> Tokens:
        renewals.append(stored.refresh)
        if len(renewals) > 1:
            second.set()
        else:  # hold the row a while: any renewal not waiting for it shows itself here
            await asyncio.to_thread(second.wait, 0.5)
        return Tokens(f"access-{len(renewals)}", f"refresh-{len(renewals)}")

    def worker() -> None:
        store = LedgerTokens(engine, "zalo")
        stale = asyncio.run(store.current(SEED))
        gate.wait()
        results.append(asyncio.run(store.renew(SEED, stale, renew)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert renewals == ["refresh-0"]
    assert {(t.access, t.refresh) for t in results} == {("access-1", "refresh-1")}
    assert asyncio.run(LedgerTokens(engine, "zalo").current(SEED)).refresh == "refresh-1"


def test_a_working_pair_outlives_settings_that_change_and_a_refused_one_does_not(engine):
    """A renewed pair's refresh token is the only live one: settings that merely differ
    (a typo, an old file copied back) never replace it; once the provider refused it, a
    new pair a person put in the settings starts the row again."""
    store = LedgerTokens(engine, "zalo")

    async def renew(stored: Tokens) -> Tokens:
        return Tokens("access-1", "refresh-1")

    async def scene() -> tuple[Tokens, Tokens, Tokens]:
        stale = await store.current(SEED)
        await store.renew(SEED, stale, renew)
        same = await store.current(SEED)  # a process starting with the same settings
        typo = await store.current(Tokens("", "refresh-typo"))
        await store.refused("refresh-0")  # a late refusal of the pair renewed since: kept
        kept = await store.current(Tokens("", "refresh-new"))
        assert kept.refresh == "refresh-1"
        await store.refused("refresh-1")  # Zalo refused refresh-1 (three months unused …)
        fresh = await store.current(Tokens("", "refresh-new"))  # a person issued a new pair
        return same, typo, fresh

    same, typo, fresh = asyncio.run(scene())
    assert (same.access, same.refresh) == ("access-1", "refresh-1")
    assert (typo.access, typo.refresh) == ("access-1", "refresh-1")
    assert (fresh.access, fresh.refresh) == ("", "refresh-new")


def test_a_failed_renewal_stores_nothing(engine):
    store = LedgerTokens(engine, "zalo")

    async def refused(stored: Tokens) -> Tokens:
        raise RuntimeError("refused")

    async def scene() -> Tokens:
        stale = await store.current(SEED)
        with pytest.raises(RuntimeError):
            await store.renew(SEED, stale, refused)
        return await store.current(SEED)

    assert asyncio.run(scene()).refresh == "refresh-0"


def test_instances_keep_their_own_pairs(engine):
    async def scene() -> tuple[Tokens, Tokens]:
        one, two = LedgerTokens(engine, "zalo-a"), LedgerTokens(engine, "zalo-b")
        stale = await one.current(SEED)
        await two.current(Tokens("b-access", "b-refresh"))

        async def renew(stored: Tokens) -> Tokens:
            return Tokens("a-access-1", "a-refresh-1")

        await one.renew(SEED, stale, renew)
        return await one.current(SEED), await two.current(Tokens("b-access", "b-refresh"))

    a, b = asyncio.run(scene())
    assert (a.refresh, b.refresh) == ("a-refresh-1", "b-refresh")
