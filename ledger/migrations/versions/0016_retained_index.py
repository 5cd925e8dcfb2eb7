"""messages: a partial index on the messages whose number retention replaced, for a
number's history (which campaigns cannot be searched without the key)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RETAINED = "recipient LIKE 'h:%'"  # ledger.schema.RETAINED when written


def upgrade() -> None:
    op.create_index(
        "ix_messages_retained",
        "messages",
        ["campaign_key"],
        sqlite_where=sa.text(RETAINED),
        postgresql_where=sa.text(RETAINED),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_retained", table_name="messages")
