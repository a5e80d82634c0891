"""Migrations on both stores: the schema they build matches the tables the code declares."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from recsys.store.engine import _alembic_config, migrate
from recsys.store.tables import metadata


def _indexes(engine: Engine) -> dict[str, dict[str, list[str]]]:
    with engine.connect() as conn:
        found = inspect(conn)
        return {
            # (PostgreSQL lists the index behind a unique constraint too)
            table: {
                i["name"]: list(i["column_names"])
                for i in found.get_indexes(table)
                if not i.get("duplicates_constraint")
            }
            for table in found.get_table_names()
            if table != "alembic_version"
        }


def test_migrated_indexes_are_the_declared_ones(engine: Engine) -> None:
    declared = {
        table.name: {i.name: [c.name for c in i.columns] for i in table.indexes}
        for table in metadata.sorted_tables
    }
    assert _indexes(engine) == declared
    assert declared["orders"] == {
        "ix_orders_customer_time": ["customer_id", "purchased_at", "order_id"]
    }


def test_the_orders_index_migration_goes_down_and_up_again(engine: Engine) -> None:
    def orders_indexes() -> set[str]:
        return set(_indexes(engine)["orders"])

    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    assert orders_indexes() == {"ix_orders_customer_id"}
    migrate(engine)
    assert orders_indexes() == {"ix_orders_customer_time"}
