"""Engine creation and schema migration for SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Select

from recsys.settings import normalise_database_url

# Alembic is imported by `migrate` alone: serving workers only check the schema.
if TYPE_CHECKING:
    import sqlite3

    from alembic.config import Config


class StoreError(Exception):
    """The store cannot be reached or is not in a usable state."""


def create_store_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for `url`. `schema` (PostgreSQL only) isolates a test run in its own schema."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL lets the API read while an ingest or campaign writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    options: dict[str, Any] = {"pool_pre_ping": True}
    if schema:
        options["connect_args"] = {"options": f"-csearch_path={schema}"}
    return create_engine(url, **options)


def sqlite_driver(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn`, or None on another database.

    The per-customer reads of a request run their statements through it: SQLAlchemy's
    execution and row processing cost several times the indexed query itself, and
    sqlite3 keeps the prepared statements in its own cache.
    """
    if conn.dialect.name != "sqlite":
        return None
    driver: sqlite3.Connection | None = conn.connection.driver_connection
    return driver


def sqlite_text(statement: Select[Any]) -> str:
    """`statement` as SQLite SQL with `?` placeholders (in its bind parameters' order)."""
    return str(statement.compile(dialect=sqlite.dialect()))


def _alembic_config() -> Config:
    from alembic.config import Config

    ini = resources.files("recsys.store").joinpath("alembic.ini")
    return Config(str(ini))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def ensure_ready(engine: Engine) -> None:
    """Raise a StoreError naming the problem when the store is unreachable or unmigrated."""
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # the driver's errors vary; the message is what matters
        raise StoreError(
            f"cannot reach the store at {engine.url.render_as_string()}: {exc}"
        ) from exc
    if "order_lines" not in tables:
        raise StoreError("the store has no schema yet; run `recsys ingest` or `recsys migrate`")
