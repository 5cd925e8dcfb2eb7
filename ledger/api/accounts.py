"""People and systems that may call Loa's HTTP API (issue #23): accounts with a role, a
password hashed with argon2id, and API tokens, each stored only as its digest, shown
once, with an expiry, revocable.

Roles, each allowed what the one before is, and more (``may``):

- ``auditor``: read everything (campaigns, reports, the audit log, exports); never change
  anything, never see a whole phone number;
- ``operator``: launch, pause, resume, cancel, suppressions, provider resumes; sees whole
  numbers where a report has them;
- ``admin``: accounts too.

Why argon2id (``argon2-cffi``, the reference implementation's bindings, well kept): a
memory-hard hash makes each guess against a stolen table cost memory as well as time, and
its parameters travel in the hash, so they can be raised later (``check_needs_rehash``).
A token is 32 random bytes: a plain SHA-256 of it is enough (nobody can guess a 256-bit
secret), and lets a request find its account with one indexed lookup.

Every change is an event in the log (``ledger.audit.actions``): the account, what
changed, who changed it; never a password or a token.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.audit.actions import record_action
from ledger.schema import api_tokens, now, users

ROLES = ("auditor", "operator", "admin")
#: A token's text starts so (a secret scanner, or a person, knows one when they see it).
TOKEN_PREFIX = "loat_"
#: The shortest password taken, and how hard to guess (zxcvbn's estimate, log10 guesses).
MIN_PASSWORD = 12
MIN_GUESSES_LOG10 = 10.0
#: How long a token lives unless told.
DEFAULT_TOKEN_LIFE = timedelta(days=90)
NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class AccountError(ValueError):
    """An account change refused; the message names the account and why."""


class Unauthorized(Exception):
    """No account behind a token or password: unknown, wrong, expired, revoked, or its
    account disabled. Deliberately one kind: the caller learns nothing more."""


@dataclass(frozen=True)
class Account:
    """An account as a request acts under it."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this account may do what ``role`` may (roles nest: admin ⊇ operator ⊇
        auditor)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, the library's (RFC 9106's) recommended parameters


def check_password(name: str, password: str) -> None:
    """Refuse a password too short or too easy to guess (never saying it back).

    Raises:
        AccountError: why.
    """
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"{name}: a password of at least {MIN_PASSWORD} characters")
    from zxcvbn import zxcvbn

    if zxcvbn(password[:72], user_inputs=[name])["guesses_log10"] < MIN_GUESSES_LOG10:
        raise AccountError(f"{name}: that password is too easy to guess; use a passphrase")


def add_user(engine: Engine, name: str, role: str, password: str) -> Account:
    """A new account.

    Raises:
        AccountError: a bad name or role, a weak password, or the name taken.
    """
    import re

    if not re.fullmatch(NAME, name):
        raise AccountError(f"{name!r}: a name of a-z, 0-9, '.', '_', '-' (64 at most)")
    if role not in ROLES:
        raise AccountError(f"{name}: role {role!r} is none of {', '.join(ROLES)}")
    check_password(name, password)
    digest, at = _hasher().hash(password), now()
    with engine.begin() as conn:
        if conn.scalar(sa.select(users.c.name).where(users.c.name == name)) is not None:
            raise AccountError(f"{name}: an account of that name exists")
        conn.execute(
            users.insert().values(
                name=name, role=role, password_hash=digest, created_at=at, updated_at=at
            )
        )
        record_action(conn, "account_added", account=name, role=role)
    return Account(name, role)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every account: name, role, created, disabled (or ``None``), live tokens."""
    live = (
        sa.select(sa.func.count())
        .where(
            api_tokens.c.account == users.c.name,
            api_tokens.c.revoked_at.is_(None),
            api_tokens.c.expires_at > now(),
        )
        .scalar_subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                users.c.name, users.c.role, users.c.created_at, users.c.disabled_at, live
            ).order_by(users.c.name)
        ).all()
    return [
        {"name": n, "role": r, "created_at": c, "disabled_at": d, "tokens": t}
        for n, r, c, d, t in rows
    ]


def set_password(engine: Engine, name: str, password: str) -> None:
    """A new password for ``name`` (``loa users reset``); its tokens stay.

    Raises:
        AccountError: no such account, or a weak password.
    """
    check_password(name, password)
    _change(engine, name, "password_reset", password_hash=_hasher().hash(password))


def disable(engine: Engine, name: str) -> None:
    """``name`` may no longer act: its password and every token stop working at once.

    Raises:
        AccountError: no such account.
    """
    _change(engine, name, "account_disabled", disabled_at=now())


def _change(engine: Engine, name: str, action: str, **values: Any) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            users.update().where(users.c.name == name).values(updated_at=now(), **values)
        ).rowcount
        if not changed:
            raise AccountError(f"{name}: no such account")
        record_action(conn, action, account=name)


def live_tokens(engine: Engine, name: str, label: str) -> int:
    """How many of ``name``'s tokens labelled ``label`` still work."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(api_tokens)
                .where(
                    api_tokens.c.account == name,
                    api_tokens.c.label == label,
                    api_tokens.c.revoked_at.is_(None),
                    api_tokens.c.expires_at > now(),
                )
            )
            or 0
        )


def issue_token(
    engine: Engine, name: str, life: timedelta = DEFAULT_TOKEN_LIFE, label: str = ""
) -> tuple[int, str, datetime]:
    """A new API token for ``name``: (its id, its text, when it expires). The text is
    returned once and stored only as its digest.

    Raises:
        AccountError: no such account, it is disabled, or ``life`` is not positive.
    """
    if life <= timedelta(0):
        raise AccountError(f"{name}: a token's life must be positive")
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    at = now()
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.disabled_at).where(users.c.name == name)).first()
        if row is None:
            raise AccountError(f"{name}: no such account")
        if row.disabled_at is not None:
            raise AccountError(f"{name}: the account is disabled")
        token_id = conn.execute(
            api_tokens.insert().values(
                account=name,
                digest=_digest(text),
                label=label[:100],
                created_at=at,
                expires_at=at + life,
            )
        ).inserted_primary_key[0]
        record_action(conn, "token_issued", account=name, token=int(token_id))
    return int(token_id), text, at + life


def revoke_token(engine: Engine, token_id: int) -> None:
    """The token stops working at once.

    Raises:
        AccountError: no such token, or already revoked.
    """
    with engine.begin() as conn:
        changed = conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now())
        ).rowcount
        if not changed:
            raise AccountError(f"token {token_id}: no such token, or revoked already")
        record_action(conn, "token_revoked", token=token_id)


def revoke_own(engine: Engine, text: str) -> bool:
    """A token revoked by whoever holds it (a logout): ``text`` itself, not its id.
    Returns whether it was live."""
    with engine.begin() as conn:
        token_id = conn.scalar(
            sa.select(api_tokens.c.id).where(
                api_tokens.c.digest == _digest(text), api_tokens.c.revoked_at.is_(None)
            )
        )
        if token_id is None:
            return False
        conn.execute(
            api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=now())
        )
        record_action(conn, "token_revoked", token=int(token_id))
    return True


def by_token(engine: Engine, text: str) -> Account:
    """The account a request's token acts for.

    Raises:
        Unauthorized: unknown, expired or revoked token, or its account disabled.
    """
    if not text.startswith(TOKEN_PREFIX) or len(text) > 100:
        raise Unauthorized
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.name, users.c.role, users.c.disabled_at, api_tokens.c.expires_at)
            .join(users, users.c.name == api_tokens.c.account)
            .where(api_tokens.c.digest == _digest(text), api_tokens.c.revoked_at.is_(None))
        ).first()
    if row is None or row.disabled_at is not None or row.expires_at <= now():
        raise Unauthorized
    return Account(row.name, row.role)


def by_password(engine: Engine, name: str, password: str) -> Account:
    """The account whose password this is (a hash is checked even for an unknown name,
    so that the time taken does not tell which names exist); rehashed when the library's
    parameters have risen since.

    Raises:
        Unauthorized: unknown name, wrong password, or the account disabled.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.role, users.c.password_hash, users.c.disabled_at).where(
                users.c.name == name
            )
        ).first()
    stored = row.password_hash if row is not None else _dummy()
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized from None
    if row is None or row.disabled_at is not None:
        raise Unauthorized
    if hasher.check_needs_rehash(stored):
        with engine.begin() as conn:
            conn.execute(
                users.update()
                .where(users.c.name == name)
                .values(password_hash=hasher.hash(password))
            )
    return Account(name, row.role)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _dummy() -> str:
    """A hash of nothing anyone knows, checked for an unknown name (the time a real check
    takes, so that a name's existence does not show in the answer's time)."""
    return str(_hasher().hash(secrets.token_hex(16)))
