"""receipts: tried_at (when a receipt waiting for its message was last tried), with a
partial index on the waiting ones, so that they are tried again in turn

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tried_at", sa.DateTime(timezone=True), nullable=True))
    # Receipts already waiting were last tried at some time unknown: their arrival stands
    # in, so the oldest are tried first, as before.
    op.execute("UPDATE receipts SET tried_at = received_at WHERE state = 'waiting'")
    op.create_index(
        "ix_receipts_waiting",
        "receipts",
        ["tried_at"],
        sqlite_where=sa.text("state = 'waiting'"),
        postgresql_where=sa.text("state = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("ix_receipts_waiting", table_name="receipts")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_column("tried_at")
