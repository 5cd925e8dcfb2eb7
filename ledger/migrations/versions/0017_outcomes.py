"""outcome_counts and outcome_acts: what a goal is measured by, per area and day, and
the numbers that acted (as keyed HMACs)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_counts",
        sa.Column("goal", sa.String(length=200), nullable=False),
        sa.Column("area", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("goal", "area", "day", name=op.f("pk_outcome_counts")),
    )
    op.create_table(
        "outcome_acts",
        sa.Column("goal", sa.String(length=200), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("goal", "who", name=op.f("pk_outcome_acts")),
    )


def downgrade() -> None:
    op.drop_table("outcome_acts")
    op.drop_table("outcome_counts")
