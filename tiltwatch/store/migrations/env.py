"""Alembic entry point: runs the migrations on the connection the store hands over.

Usage: not imported directly; :func:`tiltwatch.store.migrate.upgrade` runs it through Alembic.

The store passes an open connection in ``config.attributes["connection"]`` (so in-memory
SQLite sees the same database and the caller owns the transaction); without one, e.g. from
the ``alembic`` command line, it connects to ``sqlalchemy.url`` itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from tiltwatch.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
