"""Alembic's environment: migrate the connection
:func:`cascade.history.store._migrate.upgrade` gives, or (offline) print the SQL for the URL
:func:`cascade.history.migration_sql` gives.

That connection is already in a transaction (and, on PostgreSQL, holds the
migration lock), so every revision runs in it: all or nothing.
"""

from __future__ import annotations

from alembic import context

from cascade.history.store._schema import metadata

if context.is_offline_mode():  # `cascade history migrate --sql`: the SQL, printed
    url = context.config.attributes["url"]
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        transactional_ddl=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
else:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
with context.begin_transaction():
    context.run_migrations()
