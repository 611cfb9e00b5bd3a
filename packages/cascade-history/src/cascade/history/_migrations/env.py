"""Alembic's environment: migrate the connection :func:`cascade.history._migrate.upgrade` gives.

That connection is already in a transaction (and, on PostgreSQL, holds the
migration lock), so every revision runs in it: all or nothing.
"""

from __future__ import annotations

from alembic import context

from cascade.history._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    transactional_ddl=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
