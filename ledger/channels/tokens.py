"""A provider's expiring credentials in the ledger, renewed once for every process.

The row of a provider instance in ``provider_tokens`` is locked for the whole renewal
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every transaction holds the write lock
from its start): the second process to want a renewal waits, then finds the pair renewed
and uses it. The new pair is committed before it is returned, so no process sends with a
pair the ledger does not hold. What cannot be made safe: the provider answering a refresh
and the ledger failing before its commit loses that pair (the refresh token was spent);
the next renewal is refused and the instance halts saying what a person must do.
(``worker.sending.tokens`` gives providers this store, ``providers.tokens``.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger.schema import now, provider_tokens

_t = provider_tokens.c


class Pair(NamedTuple):
    """An access token, the refresh token that renews it, when the first ends."""

    access: str
    refresh: str
    expires_at: datetime | None = None

    def __repr__(self) -> str:  # never a token in a log or a traceback
        return f"Pair(expires_at={self.expires_at!r})"


def seed_of(pair: Pair) -> str:
    """What identifies a pair a person configured: sha256 of its refresh token, hex."""
    return hashlib.sha256(pair.refresh.encode()).hexdigest()


def current(engine: Engine, provider: str, seed: Pair) -> Pair:
    """The pair in use for ``provider``: the stored one, or ``seed`` (the settings') when
    none is stored, or when the provider refused the stored one and the settings now hold
    another (a person issued a new pair). Settings that merely differ (a typo, an old
    file copied back) never replace a pair that works: its refresh token is the only live
    one."""
    with engine.begin() as conn:
        return _held(conn, provider, seed, lock=False)


def renew(
    engine: Engine, provider: str, seed: Pair, stale_access: str, renewal: Callable[[Pair], Pair]
) -> Pair:
    """A fresh pair for ``provider``, renewed at most once for all processes: under the
    row's lock, the stored pair if its access token is no longer ``stale_access`` (another
    process renewed it meanwhile), else ``renewal(stored)``'s, committed before returning.

    Raises:
        whatever ``renewal`` raised (nothing stored then).
    """
    with engine.begin() as conn:
        stored = _held(conn, provider, seed, lock=True)
        if stored.access and stored.access != stale_access:
            return stored
        fresh = renewal(stored)
        conn.execute(
            provider_tokens.update()
            .where(_t.provider == provider)
            .values(
                access_token=fresh.access,
                refresh_token=fresh.refresh,
                expires_at=fresh.expires_at,
                updated_at=now(),
                refused_at=None,
            )
        )
    return fresh


def refused(engine: Engine, provider: str, refresh: str) -> None:
    """The provider refused the refresh token ``refresh``: if the row still holds it (no
    other process renewed it meanwhile), a new pair in the settings may now start the row
    again (``current``)."""
    with engine.begin() as conn:
        conn.execute(
            provider_tokens.update()
            .where(_t.provider == provider, _t.refresh_token == refresh)
            .values(refused_at=now())
        )


def _held(conn: Connection, provider: str, seed: Pair, lock: bool) -> Pair:
    """The stored pair (locked when ``lock``), started from ``seed`` when there is none, or
    when the stored one was refused and the settings hold another pair than the one it
    began from. Never over a working pair: its refresh token is the only live one."""
    query = sa.select(
        _t.access_token, _t.refresh_token, _t.expires_at, _t.seed, _t.refused_at
    ).where(_t.provider == provider)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    digest = seed_of(seed)
    if row is None or (row.seed != digest and row.refused_at is not None):
        values: dict[str, Any] = {
            "access_token": seed.access,
            "refresh_token": seed.refresh,
            "expires_at": seed.expires_at,
            "seed": digest,
            "updated_at": now(),
            "refused_at": None,
        }
        if row is None:
            insert = _insert(conn)(provider_tokens).values(provider=provider, **values)
            conn.execute(insert.on_conflict_do_nothing(index_elements=["provider"]))
        else:  # conditional: a process that began it again first may have renewed since
            conn.execute(
                provider_tokens.update()
                .where(_t.provider == provider, _t.seed != digest, _t.refused_at.is_not(None))
                .values(**values)
            )
        row = conn.execute(query).one()
    return Pair(row.access_token, row.refresh_token, row.expires_at)


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
