"""verifications: each whole-chain verification recorded (append-only on PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("broken", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # loa_append_only() is 0002's: a recorded verdict is evidence too.
        op.execute(
            "CREATE TRIGGER verifications_append_only BEFORE UPDATE OR DELETE ON verifications "
            "FOR EACH ROW EXECUTE FUNCTION loa_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS verifications_append_only ON verifications")
    op.drop_table("verifications")
