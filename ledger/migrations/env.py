"""Alembic environment: runs on the connection ``ledger.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through ledger.migrate
    raise RuntimeError("run migrations with `loa db upgrade`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
