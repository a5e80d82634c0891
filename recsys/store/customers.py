"""Read customers."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from recsys.records import Customer
from recsys.store.tables import customers

# Built once: the API reads one customer per request.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))


def get_customer(conn: Connection, customer_id: str) -> Customer | None:
    row = conn.execute(_CUSTOMER, {"customer_id": customer_id}).first()
    return Customer(**row._mapping) if row is not None else None
