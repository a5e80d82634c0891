"""Shared fixtures: a migrated store per test on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from recsys.store.engine import create_store_engine, migrate

# Property tests check behaviour, not speed: on a shared 2-core machine one example can
# take longer than hypothesis' default 200 ms deadline, which fails a correct test.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

PG_URL = os.environ.get("RECSYS_TEST_DATABASE_URL")
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def now() -> datetime:
    """The fixed 'now' of every test that needs one (naive UTC)."""
    return datetime(2026, 11, 20, 12, 0, tzinfo=UTC).replace(tzinfo=None)


def _pg_schema_url() -> tuple[str, str]:
    assert PG_URL is not None
    return PG_URL, f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema): a fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    if not PG_URL:
        pytest.skip("RECSYS_TEST_DATABASE_URL is not set")
    url, schema = _pg_schema_url()
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        # The schema rides in the URL so subprocesses (the CLI) land in it too.
        yield f"{url}?options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def engine(store_url: tuple[str, str | None]) -> Iterator[Engine]:
    url, _ = store_url
    engine = create_store_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()
