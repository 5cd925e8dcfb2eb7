"""messages.channel and messages.fallback: one message per recipient per channel (Zalo,
then SMS), and whether the next channel's fate is decided; receipts.message_id: Loa's own
id of a receipt's message, when the provider echoes it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_DUE = "fallback IN (0, 2)"


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.SmallInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("fallback", sa.SmallInteger(), nullable=True))
        batch_op.drop_constraint("uq_messages_campaign_key_recipient", type_="unique")
        batch_op.create_unique_constraint(
            "uq_messages_campaign_key_recipient_channel", ["campaign_key", "recipient", "channel"]
        )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_messages_fallback",
        "messages",
        ["campaign_key", "channel", "status", "fallback", "sent_at"],
        unique=False,
        sqlite_where=sa.text(_DUE),
        postgresql_where=sa.text(_DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_fallback", table_name="messages")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("message_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_campaign_key_recipient_channel", type_="unique")
        batch_op.create_unique_constraint(
            "uq_messages_campaign_key_recipient", ["campaign_key", "recipient"]
        )
        batch_op.drop_column("fallback")
        batch_op.drop_column("channel")
