"""Alembic's entry point: migrations run on the connection ``draw2digit.db.upgrade`` passes in."""

from __future__ import annotations

from alembic import context

from draw2digit.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `draw2digit db upgrade` (or draw2digit.db.upgrade)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
