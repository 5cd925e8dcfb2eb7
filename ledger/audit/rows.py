"""What a launch commits to about its messages, beyond how many: each message's carrier
and parts, as planned (the parts billed, the network counted in every breakdown). The
digest goes into the launch's own event, sealed like the rest; ``loa audit verify``
recomputes it from the rows as they are, so ``UPDATE messages SET parts = parts * 3``
(a bill inflated behind the log) is named.

    rows_digest = SHA-256( "\\n".join(f"{id},{carrier or ''},{parts}") in id order )

PostgreSQL computes it in the server (one ``string_agg``, no row leaves it); SQLite, in
Python: the same bytes either way (a test holds them to it).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.schema import messages

_PG_DIGEST = """
    SELECT encode(sha256(convert_to(coalesce(string_agg(
        id::text || ',' || coalesce(carrier, '') || ',' || parts::text, E'\\n' ORDER BY id
    ), ''), 'UTF8')), 'hex')
    FROM messages WHERE campaign_key = %(key)s
"""


def rows_digest(conn: Connection, campaign_key: int) -> str:
    """The digest of a campaign's messages' ids, carriers and parts (see above)."""
    if conn.dialect.name == "postgresql":
        return str(conn.exec_driver_sql(_PG_DIGEST, {"key": campaign_key}).scalar())
    query = (
        sa.select(messages.c.id, messages.c.carrier, messages.c.parts)
        .where(messages.c.campaign_key == campaign_key)
        .order_by(messages.c.id)
    )
    lines = (f"{i},{carrier or ''},{parts}" for i, carrier, parts in conn.execute(query))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
