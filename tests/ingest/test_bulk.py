"""BulkWriter pieces the transactions load relies on, on both stores."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Engine, select

from recsys.store import bulk
from recsys.store.tables import orders


def _orders(*rows: tuple[str, str, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"order_id": pl.Utf8, "customer_id": pl.Utf8, "purchased_at": pl.Datetime("us")},
        orient="row",
    )


def test_existing_orders_finds_only_stored_ones(engine: Engine) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 600000)
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(bulk.ORDERS, _orders(("O1", "C1", at), ("O'2", "C2", at)))
        found = writer.existing_orders(pl.Series(["O1", "O'2", "O3"]))
        assert writer.existing_orders(pl.Series([], dtype=pl.Utf8)).height == 0
    assert sorted(found.rows()) == [("O'2", "C2", at), ("O1", "C1", at)]


def test_insert_new_falls_back_to_the_upsert_when_a_key_exists(engine: Engine) -> None:
    """A key stored after the caller looked (a concurrent writer) must not fail the load."""
    late, early = datetime(2026, 1, 2, 10), datetime(2026, 1, 2, 9)
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(bulk.ORDERS, _orders(("O1", "C1", late)))
        writer.insert_new(bulk.ORDERS, _orders(("O1", "C1", early), ("O2", "C2", late)))
        # The transaction is still usable after the fallback.
        writer.insert_new(bulk.ORDERS, _orders(("O3", "C3", late)))
    with engine.connect() as conn:
        rows = sorted(
            tuple(r) for r in conn.execute(select(orders.c.order_id, orders.c.purchased_at))
        )
    assert rows == [("O1", early), ("O2", late), ("O3", late)]
