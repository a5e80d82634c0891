"""Alembic environment: runs on the connection handed in by `recsys.store.engine.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from recsys.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        version_table_schema=connection.dialect.default_schema_name
        if connection.dialect.name == "postgresql"
        else None,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection")
    with create_engine(url).begin() as conn:
        _run(conn)
