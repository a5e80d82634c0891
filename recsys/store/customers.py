"""Read customers."""

from __future__ import annotations

from sqlalchemy import Connection, select

from recsys.records import Customer
from recsys.store.tables import customers


def get_customer(conn: Connection, customer_id: str) -> Customer | None:
    row = conn.execute(select(customers).where(customers.c.customer_id == customer_id)).first()
    return Customer(**row._mapping) if row is not None else None
