"""Retention: phone numbers kept no longer than needed.

After the retention period, ``apply`` replaces the number of every finished message by a
keyed HMAC of it: ``h:`` and 16 base32 characters (80 bits of HMAC-SHA256; the column
holds 20). The same number under the same key gives the same value, so per-campaign
uniqueness and counts hold, and whoever holds the key can still answer "was this number
texted?" (``pseudonym``); nobody without it can recover a number.

The audit chain is untouched by design: events never hold a number (``ledger.chain``),
so ``loa audit verify`` passes before and after. Suppression lists (opt-outs) keep their
numbers: a refusal must be honoured for good.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.status import FINAL
from ledger.schema import messages, now

PREFIX = "h:"


class RetentionError(ValueError):
    """Retention cannot run as configured (no key, a key too short)."""


def pseudonym(key: str, e164: str) -> str:
    """The value a number is replaced by under ``key``."""
    digest = hmac.new(key.encode(), e164.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest[:10]).decode("ascii")


def apply(engine: Engine, key: str, older_than: timedelta, chunk: int = 5000) -> int:
    """Replace the numbers of messages that ended more than ``older_than`` ago. Safe to
    run again (replaced numbers are skipped). Returns how many were replaced.

    Raises:
        RetentionError: the key is shorter than 16 characters.
    """
    if len(key) < 16:
        raise RetentionError("LOA_RETENTION_KEY: at least 16 characters")
    cutoff = now() - older_than
    due = sa.and_(
        messages.c.final_at < cutoff,
        messages.c.status.in_([s.value for s in FINAL]),
        ~messages.c.recipient.startswith(PREFIX),
    )
    replaced = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(messages.c.id, messages.c.recipient).where(due).limit(chunk)
            ).all()
            if not rows:
                return replaced
            conn.execute(
                messages.update()
                .where(messages.c.id == sa.bindparam("mid"))
                .values(recipient=sa.bindparam("hashed")),
                [{"mid": mid, "hashed": pseudonym(key, number)} for mid, number in rows],
            )
            replaced += len(rows)
