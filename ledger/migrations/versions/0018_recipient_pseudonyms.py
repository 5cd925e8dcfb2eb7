"""recipient_pseudonyms: a goal campaign's recipients as their keyed HMAC, written at
launch, so that the goal section matches them to the numbers that acted with a join;
goal_keys: the fingerprint of the key a goal's numbers were kept under

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipient_pseudonyms",
        sa.Column("campaign_key", sa.Integer(), nullable=False),
        sa.Column("list_row", sa.Integer(), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_key", "list_row", name=op.f("pk_recipient_pseudonyms")),
    )

    op.create_table(
        "goal_keys",
        sa.Column("goal", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("goal", name=op.f("pk_goal_keys")),
    )


def downgrade() -> None:
    op.drop_table("goal_keys")
    op.drop_table("recipient_pseudonyms")
