"""The purchase frame as the store's plain SQLAlchemy query returns it: the reference
the fast readers (`recsys.store.purchases.purchase_frame`) are compared with."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, select

from recsys.store.purchases import purchase_schema
from recsys.store.tables import order_lines, orders


def queried_purchases(conn: Connection) -> pl.DataFrame:
    """Every purchase line with its order's customer and time, in `purchase_frame`'s order."""
    rows = conn.execute(
        select(orders.c.customer_id, order_lines.c.item_id, order_lines.c.order_id,
               order_lines.c.quantity, order_lines.c.unit_price, orders.c.purchased_at)
        .join(orders, orders.c.order_id == order_lines.c.order_id)
        .order_by(orders.c.purchased_at, order_lines.c.order_id, order_lines.c.item_id)
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=purchase_schema(), orient="row")
